"""The Stats page's queries on a database of 1,000,000 runs: all of them together, per page load.

The database is generated once with bulk DataFrame inserts and cached under bench/data/ (about a
year of use: several models on two Ollama hosts and the embedded engine, mostly complete replies,
some stopped or failed). Every page load runs the same queries the page runs; we print the
median of several loads, for the unfiltered page and for a filtered one, then again while a
CPU burner keeps both cores busy (the "busy" scenario: the issue's machine at load average 4 to 6).
"""

from __future__ import annotations

import os
import subprocess
import sys
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


BURN = "while True: pass"


@contextmanager
def cpu_burners(count: int = os.cpu_count() or 2) -> Iterator[None]:
    """One busy-looping process per core for as long as the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let them reach full speed
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def page_load(service: stats.StatsService, choose: bool) -> float:
    """The queries one render of the page runs, in milliseconds."""
    started = time.perf_counter()
    service.version()
    choices = service.choices()
    f = filtered(choices) if choose else stats.StatsFilter()
    service.report(f, choices)
    return (time.perf_counter() - started) * 1000


def filtered(choices: stats.FilterChoices) -> stats.StatsFilter:
    """The last 90 days, two models on one host."""
    assert choices.last_day is not None
    return stats.StatsFilter(
        start=choices.last_day - timedelta(days=89),
        end=choices.last_day,
        models=("llama3.2:latest", "qwen3:4b"),
        hosts=("http://127.0.0.1:11434",),
    )


def query_breakdown(db: Database) -> list[tuple[str, str]]:
    """Each query of an unfiltered load alone (median of five), to show where the time goes."""
    f = stats.StatsFilter()
    with db.cursor() as cur:
        choices = stat_queries.filter_choices(cur)
        clock = stat_queries.local_clock(cur)
        switch_ids = stat_queries.SwitchLog().switch_ids(cur)
    grain = stats.time_grain(f, choices)
    queries: dict[str, Callable[[duckdb.DuckDBPyConnection], object]] = {
        "data_version": stat_queries.data_version,
        "filter_choices": stat_queries.filter_choices,
        "local_clock": stat_queries.local_clock,
        "totals": lambda cur: stat_queries.totals(cur, f),
        "usage (over time, by hour)": lambda cur: stat_queries.usage(cur, f, clock, grain),
        "per_model": lambda cur: stat_queries.per_model(cur, f),
        "reply_lengths": lambda cur: stat_queries.reply_lengths(cur, f),
        "context_hits": lambda cur: stat_queries.context_hits(cur, f),
        "model_switches": lambda cur: stat_queries.model_switches(cur, f, switch_ids),
    }
    rows = []
    for name, query in queries.items():
        samples = []
        for _ in range(5):
            with db.cursor() as cur:
                started = time.perf_counter()
                query(cur)
                samples.append((time.perf_counter() - started) * 1000)
        rows.append((f"  {name}", f"{median(samples):.1f} ms"))
    return rows


def one_scan(db: Database) -> float:
    """A yardstick: one plain aggregate over every run, in milliseconds."""
    started = time.perf_counter()
    with db.cursor() as cur:
        cur.execute("SELECT model, sum(completion_tokens) FROM runs GROUP BY model").fetchall()
    return (time.perf_counter() - started) * 1000


def paired(service: stats.StatsService, choose: bool) -> tuple[list[float], list[float]]:
    """Page loads alternating with the yardstick: the machine is shared and noisy, so the ratio
    of each load to the scan beside it says more than either alone."""
    loads, ratios = [], []
    for _ in range(LOADS):
        scan = one_scan(service.db)
        loads.append(page_load(service, choose))
        ratios.append(loads[-1] / scan)
    return loads, ratios


def main() -> None:
    db = cached_database()
    try:
        with db.cursor() as cur:
            runs = cur.execute("SELECT count(*) FROM runs").fetchone()[0]
        service = stats.StatsService(db)
        first = page_load(service, choose=False)  # finds every model switch once
        loads, ratios = paired(service, choose=False)
        narrowed, _ = paired(service, choose=True)
        cpu_started = time.process_time()
        quiet_again = [page_load(service, choose=False) for _ in range(LOADS)]
        cpu_ms = (time.process_time() - cpu_started) * 1000 / LOADS
        with cpu_burners():
            busy = [page_load(service, choose=False) for _ in range(LOADS)]
            busy_narrowed = [page_load(service, choose=True) for _ in range(LOADS)]
            busy_load = os.getloadavg()[0]
        report(
            f"stats: every query of one Stats page load, {runs:,} runs (median of {LOADS})",
            [
                ("first load in a process (finds every model switch)", f"{first:.0f} ms"),
                (f"all runs (target <= {TARGET_MS} ms)", f"{median(loads):.0f} ms"),
                ("  fastest of the loads", f"{min(loads):.0f} ms"),
                ("  as plain aggregate scans of every run", f"{median(ratios):.1f}x"),
                (
                    f"90 days, 2 models, 1 host (target <= {TARGET_MS} ms)",
                    f"{median(narrowed):.0f} ms",
                ),
                (
                    "load average while measuring",
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
                ),
                (
                    "  CPU time per load, all runs (every DuckDB thread; load-independent)",
                    f"{cpu_ms:.0f} ms (wall {median(quiet_again):.0f} ms)",
                ),
                (f"busy: {os.cpu_count()} CPU burners beside the page", ""),
                (f"  all runs (target <= {TARGET_MS} ms)", f"{median(busy):.0f} ms"),
                ("    slowest of the loads", f"{max(busy):.0f} ms"),
                (
                    f"  90 days, 2 models, 1 host (target <= {TARGET_MS} ms)",
                    f"{median(busy_narrowed):.0f} ms",
                ),
                ("  load average (1 min) at the end", f"{busy_load:.1f}"),
                ("per query, all runs:", ""),
                *query_breakdown(db),
            ],
        )
    finally:
        db.close()


if __name__ == "__main__":
    main()
