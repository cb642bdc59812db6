"""The Stats page's queries on a database of 1,000,000 runs: all of them together, per page load.

The database is generated once with bulk DataFrame inserts and cached under bench/data/ (about a
year of use: several models on two Ollama hosts and the embedded engine, mostly complete replies,
some stopped or failed). Every page load runs, uncached, the same queries the page runs (in one
read transaction, as the page does); we print the median of several loads and the slowest single
query, for the page as it opens (every day) and for a filtered one, quiet and then while one
busy-looping process per core keeps the machine busy (the issue's machine at load average 4 to 6).
Then what a run finishing costs the summaries: the old whole-day rebuild beside the incremental
update, on the same database.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.support import ROOT, median, report
from chatcore import stats
from chatcore.storage import rollup
from chatcore.storage import stats as stat_queries
from chatcore.storage.db import Database
from chatcore.storage.knowledge import retrieval_totals
from chatcore.storage.runs import finish_run
from chatcore.types import Metrics, RunStatus

RUNS = 1_000_000
RUNS_PER_CONVERSATION = 8
DATA = ROOT / "bench" / "data" / f"stats-{RUNS}.duckdb"
LOADS = 7
TARGET_MS = 300

# model: (backend, host, median tokens/s, num_ctx recorded by the backend)
MODELS = {
    "llama3.2:latest": ("ollama", "http://127.0.0.1:11434", 60.0, None),
    "qwen3:4b": ("ollama", "http://127.0.0.1:11434", 35.0, None),
    "mistral:7b": ("ollama", "http://127.0.0.1:11434", 22.0, None),
    "gemma3:12b": ("ollama", "http://gpu-box:11434", 30.0, None),
    "deepseek-r1:14b": ("ollama", "http://gpu-box:11434", 18.0, None),
    "gemma-3-270m": ("embedded", "local", 120.0, 2048),
}
OPTIONS = '{"temperature": 0.7, "top_p": 0.9, "max_tokens": 500, "system_prompt": ""}'


def generate(path: Path, runs: int = RUNS, seed: int = 7) -> None:
    """Fill a new database with `runs` runs, their conversations and messages, in bulk."""
    rng = np.random.default_rng(seed)
    names = list(MODELS)
    conversations = runs // RUNS_PER_CONVERSATION
    # a year of activity, busier in the day; runs in start order, as the app numbers them
    end = pd.Timestamp("2026-11-01", tz="UTC")
    offsets = np.sort(rng.uniform(0, 365 * 86400, runs))
    started = end - pd.to_timedelta(365 * 86400 - offsets, unit="s")
    conversation = np.minimum(np.arange(runs) // RUNS_PER_CONVERSATION, conversations - 1)
    # each conversation keeps one model, with the odd switch within it
    model_index = rng.integers(0, len(names), conversations)[conversation]
    switched = rng.random(runs) < 0.1
    model_index = np.where(switched, rng.integers(0, len(names), runs), model_index)
    model = np.array(names, dtype=object)[model_index]
    backend = np.array([MODELS[n][0] for n in names], dtype=object)[model_index]
    host = np.array([MODELS[n][1] for n in names], dtype=object)[model_index]
    speed = np.array([MODELS[n][2] for n in names])[model_index] * rng.lognormal(0, 0.15, runs)
    num_ctx = pd.array([MODELS[n][3] for n in names], dtype="Int32")[model_index]

    status = rng.choice(["complete", "stopped", "error"], runs, p=[0.93, 0.04, 0.03])
    complete = status == "complete"
    completion = np.maximum(1, rng.lognormal(5.3, 0.8, runs)).astype(np.int64)
    prompt = np.maximum(5, rng.lognormal(6.0, 1.0, runs)).astype(np.int64)
    prompt_chars = (prompt * rng.uniform(3.0, 5.0, runs)).astype(np.int64)
    eval_ns = (completion / speed * 1e9).astype(np.int64)
    prompt_eval_ns = (prompt / (speed * 20) * 1e9).astype(np.int64)
    load_ns = rng.lognormal(16.0, 0.5, runs).astype(np.int64)  # ~10 ms warm
    cold = rng.random(runs) < 0.05
    load_ns = np.where(cold, rng.lognormal(21.5, 0.4, runs), load_ns).astype(np.int64)  # ~2 s
    total_ns = load_ns + prompt_eval_ns + eval_ns
    ttft = (load_ns + prompt_eval_ns) / 1e6 + rng.uniform(2, 20, runs)
    finished = started + pd.to_timedelta(total_ns, unit="ns")

    def metric(values: np.ndarray) -> pd.Series:
        return pd.Series(values, dtype="Int64").where(complete, pd.NA)

    conversation_ids = np.char.add("bench-", np.arange(conversations).astype(str)).astype(object)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, runs + 1),
            "conversation_id": conversation_ids[conversation],
            "message_id": 2 * np.arange(1, runs + 1),
            "model": model,
            "backend": backend,
            "host": host,
            "options": OPTIONS,
            "status": status,
            "error": np.where(status == "error", "Model crashed", None),
            "started_at": started,
            "finished_at": finished,
            "ttft_ms": np.where(status != "error", ttft, np.nan),
            "prompt_tokens": metric(prompt),
            "completion_tokens": metric(completion),
            "total_duration_ns": metric(total_ns),
            "load_duration_ns": metric(load_ns),
            "prompt_eval_duration_ns": metric(prompt_eval_ns),
            "eval_duration_ns": metric(eval_ns),
            "done_reason": np.where(complete, "stop", None),
            "prompt_chars": prompt_chars,
            "num_ctx": num_ctx,
        }
    )
    messages = pd.DataFrame(
        {
            "id": np.concatenate([frame["message_id"] - 1, frame["message_id"]]),
            "conversation_id": np.concatenate([frame["conversation_id"]] * 2),
            "role": np.repeat(np.array(["user", "assistant"], dtype=object), runs),
            "content": "",
            "created_at": np.concatenate([started, started]),
        }
    )
    first = frame.groupby("conversation_id", sort=False)["started_at"].agg(["min", "max"])
    conversation_rows = pd.DataFrame(
        {
            "id": first.index,
            "title": "A benchmark conversation",
            "created_at": first["min"],
            "updated_at": first["max"],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(path)
    with db.transaction() as cur:
        cur.register("conversation_rows", conversation_rows)
        cur.register("message_rows", messages)
        cur.register("run_rows", frame)
        cur.execute(insert("conversations", conversation_rows, "conversation_rows"))
        cur.execute(insert("messages", messages, "message_rows"))
        cur.execute(insert("runs", frame, "run_rows"))
        rollup.rebuild_all(cur)
    with db.cursor() as cur:
        cur.execute("CHECKPOINT")
    db.close()


def insert(table: str, frame: pd.DataFrame, view: str) -> str:
    columns = ", ".join(frame.columns)
    return f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {view}"


def cached_database() -> Database:
    if not DATA.exists():
        print(f"generating {RUNS:,} runs into {DATA.relative_to(ROOT)} (once)...", flush=True)
        started = time.perf_counter()
        partial = DATA.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(partial)
        partial.rename(DATA)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return Database(DATA)


def burn() -> None:
    while True:
        pass


@contextmanager
def cpu_burners(count: int = os.cpu_count() or 2) -> Iterator[None]:
    """One busy-looping process per core (multiprocessing) for as long as the block runs."""
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(count)]
    for burner in burners:
        burner.start()
    try:
        time.sleep(0.5)  # let them reach full speed
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.join()


Query = Callable[[duckdb.DuckDBPyConnection], object]


def page_queries(f: stats.StatsFilter, choices: stats.FilterChoices) -> dict[str, Query]:
    """Every query one uncached render of the Stats page runs for `f`, by name, in page order:
    the data version and filter choices (pages/stats.py), the report's queries
    (StatsService._make_report) and the knowledge base's usage (ui.knowledge.show_usage)."""
    grain = stats.time_grain(f, choices)
    clock: list[stat_queries.LocalClock] = []
    narrowed: list[stat_queries.StatsFilter] = []  # f without the bounds every run is within

    def days(cur: duckdb.DuckDBPyConnection) -> None:
        narrowed.append(f.within(*stat_queries.run_days(cur)))

    def usage(cur: duckdb.DuckDBPyConnection) -> object:
        return stat_queries.usage(cur, narrowed[0], clock[0], grain)

    return {
        "queued finished runs (StatsService.version)": rollup.queued,
        "data_version": stat_queries.data_version,
        "filter_choices": stat_queries.filter_choices,
        "local_clock": lambda cur: clock.append(stat_queries.local_clock(cur)),
        "run_days": days,
        "totals (conversations, messages)": lambda cur: stat_queries.totals(
            cur, narrowed[0], messages=f
        ),
        "usage (over time, by hour)": usage,
        "per_model": lambda cur: stat_queries.per_model(cur, narrowed[0]),
        "reply_lengths": lambda cur: stat_queries.reply_lengths(cur, narrowed[0]),
        "context_hits (probably overflowed)": lambda cur: stat_queries.context_hits(
            cur, narrowed[0]
        ),
        "model_switches": lambda cur: stat_queries.model_switches(cur, narrowed[0]),
        "knowledge usage": lambda cur: retrieval_totals(cur, f),
    }


def page_load(db: Database, f: stats.StatsFilter, choices: stats.FilterChoices) -> dict[str, float]:
    """One uncached page load: each query's milliseconds, in one read transaction as the page."""
    times = {}
    with db.transaction() as cur:
        for name, query in page_queries(f, choices).items():
            started = time.perf_counter()
            query(cur)
            times[name] = (time.perf_counter() - started) * 1000
    return times


def page_loads(db: Database, f: stats.StatsFilter, choices: stats.FilterChoices) -> Loads:
    return Loads([page_load(db, f, choices) for _ in range(LOADS)])


class Loads:
    """Several page loads: the median total, and each query's median."""

    def __init__(self, loads: list[dict[str, float]]) -> None:
        self.loads = loads

    @property
    def total(self) -> float:
        return median([sum(load.values()) for load in self.loads])

    @property
    def worst_total(self) -> float:
        return max(sum(load.values()) for load in self.loads)

    def per_query(self) -> dict[str, float]:
        return {name: median([load[name] for load in self.loads]) for name in self.loads[0]}

    def slowest(self) -> tuple[str, float]:
        return max(self.per_query().items(), key=lambda item: item[1])


def filtered(choices: stats.FilterChoices) -> stats.StatsFilter:
    """The last 90 days, two models on one host."""
    assert choices.last_day is not None
    return stats.StatsFilter(
        start=choices.last_day - timedelta(days=89),
        end=choices.last_day,
        models=("llama3.2:latest", "qwen3:4b"),
        hosts=("http://127.0.0.1:11434",),
    )


def scenario_rows(label: str, loads: Loads) -> list[tuple[str, str]]:
    name, slowest = loads.slowest()
    return [
        (f"{label}: all queries of a load (target <= {TARGET_MS} ms)", f"{loads.total:.0f} ms"),
        ("    slowest load", f"{loads.worst_total:.0f} ms"),
        (f"    slowest query (target <= {TARGET_MS} ms)", f"{slowest:.0f} ms ({name})"),
    ]


# --- the cost of a run finishing ---


Costs = dict[str, tuple[float, float]]  # way: (wall ms, CPU ms), medians


def finish_costs(db: Database, rounds: int = 7) -> Costs:
    """A run on the busiest part of the history (its last day) finishing, rolled back each time:
    the whole-day rebuild finish_run did before ("day"), the incremental update of every summary
    now done after it on a thread of its own ("run"), and finish_run now ("finish": the run's row
    and a queue entry), in wall and CPU milliseconds (CPU: every thread of the process)."""
    samples: dict[str, list[tuple[float, float]]] = {"day": [], "run": [], "finish": []}
    for _ in range(rounds):
        for way in samples:
            with db.cursor() as cur:
                cur.execute("BEGIN TRANSACTION")
                run_id, host = streaming_run(cur)
                started, cpu_started = time.perf_counter(), time.process_time()
                if way == "day":
                    cur.execute("UPDATE runs SET status = 'complete' WHERE id = ?", [run_id])
                    rebuild_day_as_before(cur, rollup.days_of_runs(cur, f"id = {run_id}", None))
                elif way == "run":
                    cur.execute("UPDATE runs SET status = 'complete' WHERE id = ?", [run_id])
                    rollup.run_finished(cur, run_id, host)
                else:  # what the reply waits for now: the summaries are added after it
                    finish_run(
                        cur,
                        run_id=run_id,
                        status=RunStatus.COMPLETE,
                        error=None,
                        ttft_ms=120.0,
                        metrics=Metrics(
                            prompt_tokens=300,
                            completion_tokens=200,
                            total_duration_ns=5 * 10**9,
                            load_duration_ns=10**7,
                            prompt_eval_duration_ns=10**8,
                            eval_duration_ns=4 * 10**9,
                        ),
                    )
                samples[way].append(
                    (
                        (time.perf_counter() - started) * 1000,
                        (time.process_time() - cpu_started) * 1000,
                    )
                )
                cur.execute("ROLLBACK")
    return {
        way: (median([wall for wall, _ in taken]), median([cpu for _, cpu in taken]))
        for way, taken in samples.items()
    }


def rebuild_day_as_before(cur: duckdb.DuckDBPyConnection, days: list[int]) -> None:
    """What finish_run did before (rollup.rebuild_days of migration 13's tables): the run's
    whole UTC day of rollup, digests and context hits recomputed, and its month's digest."""
    day = days[0]
    in_day = (
        f"started_at >= to_timestamp({day * 86400}) AND started_at < to_timestamp({day * 86400})"
        f" + INTERVAL 1 DAY AND {rollup.UTC_DAY} = {day}"
    )
    for table, rows in rollup.DERIVED_13.items():
        cur.execute(f"DELETE FROM {table} WHERE utc_day = ?", [day])
        cur.execute(f"INSERT INTO {table} {rows(in_day)}")
    first, last = rollup.days_of_month(rollup.month_of(day))
    cur.execute("DELETE FROM run_digest_month WHERE month = ?", [rollup.month_of(day)])
    cur.execute(
        f"INSERT INTO run_digest_month {rollup.month_rows(f'utc_day BETWEEN {first} AND {last}')}"
    )


def streaming_run(cur: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """A new streaming run started at the history's last moment, as a copy of the last run."""
    row = cur.execute(
        """
        INSERT INTO runs (id, conversation_id, message_id, model, backend, host, options,
            status, started_at, prompt_chars, completion_tokens, prompt_tokens, ttft_ms,
            eval_duration_ns, load_duration_ns, prompt_eval_duration_ns, total_duration_ns)
        SELECT id + 1, conversation_id, message_id + 2, model, backend, host, options,
            'streaming', started_at + INTERVAL 1 SECOND, prompt_chars, 200, 300, 150.0,
            4 * 10 ** 9, 10 ** 7, 10 ** 8, 5 * 10 ** 9
        FROM runs ORDER BY id DESC LIMIT 1
        RETURNING id, host
        """
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def main() -> None:
    db = cached_database()
    try:
        with db.cursor() as cur:
            runs = cur.execute("SELECT count(*) FROM runs").fetchone()[0]
            choices = stat_queries.filter_choices(cur)
        every_day = stats.StatsService(db).default_filter(choices)
        narrowed = filtered(choices)
        page_load(db, every_day, choices)  # warm the file's pages into memory
        quiet, quiet_narrowed = (
            page_loads(db, every_day, choices),
            page_loads(db, narrowed, choices),
        )
        with cpu_burners():
            busy = page_loads(db, every_day, choices)
            busy_narrowed = page_loads(db, narrowed, choices)
            busy_load = os.getloadavg()[0]
        costs = finish_costs(db)
        (day, day_cpu), (run, run_cpu), (finish, finish_cpu) = costs.values()
        report(
            f"stats: every query of one uncached Stats page load, {runs:,} runs "
            f"(median of {LOADS} loads)",
            [
                *scenario_rows("quiet, every day", quiet),
                *scenario_rows("quiet, 90 days, 2 models, 1 host", quiet_narrowed),
                *scenario_rows(f"busy ({os.cpu_count()} CPU burners), every day", busy),
                *scenario_rows("busy, 90 days, 2 models, 1 host", busy_narrowed),
                ("  load average (1 min) at the end of the busy loads", f"{busy_load:.1f}"),
                ("per query, every day: quiet / busy", ""),
                *(
                    (f"  {name}", f"{ms:.1f} / {busy.per_query()[name]:.1f} ms")
                    for name, ms in quiet.per_query().items()
                ),
                ("a run finishing, on the history's last day (median of 7): wall / CPU", ""),
                (
                    "  before: finish_run's summaries, its whole UTC day recomputed",
                    f"{day:.1f} / {day_cpu:.1f} ms",
                ),
                (
                    "  now: finish_run in all (the outcome, the run queued for Stats)",
                    f"{finish:.1f} / {finish_cpu:.1f} ms",
                ),
                ("    as a share of before", f"{finish / day:.2f}x"),
                (
                    "  now, just after on its own thread: every summary updated incrementally",
                    f"{run:.1f} / {run_cpu:.1f} ms",
                ),
                ("    as a share of before", f"{run / day:.2f}x"),
            ],
        )
    finally:
        db.close()


if __name__ == "__main__":
    main()
