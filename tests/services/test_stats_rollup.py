"""The Stats rollup stays equal to the runs through every way runs arrive, change and go, and the
digest's quantiles (used beyond EXACT_QUANTILES_UP_TO runs) stay within 1% of the exact ones."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.stats import PAUSE_SECONDS, StatsFilter, summarise_now
from chatcore.storage import rollup
from chatcore.storage import stats as queries
from chatcore.storage.conversations import delete_conversations
from chatcore.storage.db import Database
from chatcore.storage.runs import finish_run, mark_interrupted_runs, start_run
from chatcore.storage.transfer import insert_file, reserve_ids
from chatcore.types import Metrics, RunStatus
from testkit.stats_data import GEMMA, LLAMA, LOCAL, QWEN, Run

DERIVED_13 = ["run_rollup", "run_digest", "run_digest_month", "run_context_hits"]
DERIVED_16 = [
    "run_summary_queue",  # empty once summarised
    "run_conversations",
    "run_lengths",
    "run_lengths_month",
    "run_switches",
    "run_rollup_hour",
    "run_rollup_day",
]
DERIVED = DERIVED_13 + DERIVED_16


def contents(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """The tables, once the runs finished so far are in them (as Stats reads them)."""
    summarise_now(db)
    with db.cursor() as cur:
        return {t: cur.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in DERIVED}


def recomputed(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """What the tables hold when computed afresh from every run (then left as they were)."""
    with db.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        rollup.rebuild_all(cur)
        fresh = {t: cur.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in DERIVED}
        cur.execute("ROLLBACK")
    return fresh


def test_the_rollup_follows_chats_deletes_imports_and_interruptions(services: Services) -> None:
    db = services.db
    first = services.chat.send(None, "Hi", "llama3.2", GenerationParams()).consume()
    services.chat.send(first.conversation_id, "More", "qwen3:4b", GenerationParams()).consume()
    services.chat.send(None, "Another", "llama3.2", GenerationParams()).consume()
    assert contents(db)["run_rollup"], "finished runs are rolled up at once"
    assert contents(db) == recomputed(db)

    exported = services.transfer.export_json([first.conversation_id])
    services.history.delete([first.conversation_id])
    assert contents(db) == recomputed(db)
    assert sum(row[6] for row in contents(db)["run_rollup"]) == 1  # the runs column

    services.transfer.import_json(exported)
    assert contents(db) == recomputed(db)
    assert sum(row[6] for row in contents(db)["run_rollup"]) == 3

    with db.transaction() as cur:  # a reply cut off by a crash, marked at the next start
        start_run(
            cur,
            conversation_id=first.conversation_id,
            message_id=1,
            model="llama3.2:latest",
            backend="ollama",
            host="h",
            options={},
            prompt_chars=3,
        )
    assert contents(db) == recomputed(db)  # still streaming: not counted yet
    with db.transaction() as cur:
        mark_interrupted_runs(cur)
    assert contents(db) == recomputed(db)
    assert sum(row[6] for row in contents(db)["run_rollup"]) == 4


def test_a_reply_is_stored_first_and_counted_just_after_even_across_a_crash(
    db_path: Path,
) -> None:
    db = Database(db_path)
    with db.transaction() as cur:
        run_id = random_start(cur, np.random.default_rng(4), datetime(2026, 3, 1, tzinfo=UTC))
    with db.transaction() as cur:
        random_finish(cur, np.random.default_rng(4), run_id)
    with db.cursor() as cur:  # finish_run only queued it: its transaction stays short
        assert rollup.queued(cur)
        assert not cur.execute("SELECT * FROM run_rollup").fetchall()
    db.close()  # the app stops before it was added
    reopened = Database(db_path)
    with reopened.cursor() as cur:
        assert not rollup.queued(cur), "the next start adds it"
        assert cur.execute("SELECT sum(runs) FROM run_rollup").fetchone() == (1,)
    assert contents(reopened) == recomputed(reopened)
    reopened.close()


def test_stats_counts_a_reply_as_soon_as_it_is_stored(services: Services) -> None:
    services.chat.send(None, "Hi", "llama3.2", GenerationParams()).consume()
    # whether or not the summaries' own thread got there first, Stats reads every finished run
    choices = services.stats.choices()
    report = services.stats.report(services.stats.default_filter(choices), choices)
    assert report.headline.iloc[0]["replies"] == 1
    assert services.knowledge.usage()["replies"] == 1
    assert contents(services.db) == recomputed(services.db)


def test_replies_are_added_to_the_summaries_in_a_pause_between_sends(services: Services) -> None:
    services.db.turns.enter()  # another send's turn in flight: no pause yet
    try:
        services.chat.send(None, "Hi", "llama3.2", GenerationParams()).consume()
        time.sleep(PAUSE_SECONDS * 3)
        with services.db.cursor() as cur:
            assert rollup.queued(cur), "a send in flight: the summaries wait"
    finally:
        services.db.turns.leave()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with services.db.cursor() as cur:
            if not rollup.queued(cur):
                break
        time.sleep(0.05)
    with services.db.cursor() as cur:
        assert not rollup.queued(cur), "added once the sends paused"
        assert cur.execute("SELECT sum(runs) FROM run_rollup").fetchone() == (1,)


def test_migration_13_backfills_existing_runs(db_path: Path) -> None:
    db = Database(db_path)
    start = datetime(2026, 1, 30, 22, tzinfo=UTC)
    bulk_insert(db, spread_runs(start, 300))
    expected = contents(db)
    with db.cursor() as cur:  # as a database made before migration 13
        for table in DERIVED_13:
            cur.execute(f"DROP TABLE {table}")
        cur.execute("DELETE FROM schema_version WHERE version = 13")
    db.close()
    reopened = Database(db_path)
    assert contents(reopened) == expected
    assert sum(row[6] for row in expected["run_rollup"]) == 300
    reopened.close()


def test_migration_16_backfills_the_summaries_of_existing_runs(db_path: Path) -> None:
    db = Database(db_path)
    bulk_insert(db, spread_runs(datetime(2026, 1, 30, 22, tzinfo=UTC), 300))
    expected = contents(db)
    assert expected["run_switches"] and expected["run_lengths_month"]
    with db.cursor() as cur:  # as a database made before migration 16
        for table in [*DERIVED_16, "run_conversation_numbers"]:
            cur.execute(f"DROP TABLE {table}")
        cur.execute("DROP SEQUENCE run_conversation_numbers_seq")
        cur.execute("DELETE FROM schema_version WHERE version = 16")
    db.close()
    reopened = Database(db_path)
    assert contents(reopened) == expected
    reopened.close()


HOSTS = {"http://a:11434": "ollama", "http://b:11434": "ollama", "local": "embedded"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_equal_a_fresh_recompute_through_random_finishes_deletes_and_imports(
    db_path: Path, seed: int
) -> None:
    """Runs start on random hosts and quarter hours, finish in any order (some on another host,
    some without figures), whole conversations go, others come back as imports, a crash leaves
    runs streaming: after every step each summary holds what a recompute from the runs gives."""
    rng = np.random.default_rng(seed)
    db = Database(db_path)
    streaming: list[int] = []
    start = datetime(2026, 3, 28, 20, tzinfo=UTC)  # across a month's end
    for step in range(60):
        action = rng.choice(["start", "start", "finish", "finish", "delete", "import", "crash"])
        with db.transaction() as cur:
            if action == "start" or (not streaming and action == "finish"):
                streaming.append(random_start(cur, rng, start))
            elif action == "finish":
                run_id = streaming.pop(int(rng.integers(0, len(streaming))))
                random_finish(cur, rng, run_id)
            elif action == "delete":
                conversation = f"c{int(rng.integers(0, 6))}"
                streaming = [r for r in streaming if not in_conversation(cur, r, conversation)]
                delete_conversations(cur, [conversation])
            elif action == "import":
                import_copies(cur, f"c{int(rng.integers(0, 6))}", f"imported-{step}")
            elif action == "crash" and rng.random() < 0.3:
                mark_interrupted_runs(cur)
                streaming = []
        if step % 2:  # (queued runs then meet a delete, import or crash half the time)
            assert contents(db) == recomputed(db), (step, action)
    with db.cursor() as cur:
        finished = cur.execute("SELECT count(*) FROM runs WHERE status <> 'streaming'").fetchone()
    assert finished is not None and finished[0] > 5
    db.close()


@pytest.mark.parametrize("seed", [4, 5])
def test_a_burst_of_finished_runs_summarised_in_one_pass_equals_a_fresh_recompute(
    db_path: Path, seed: int
) -> None:
    """A tool's burst: many runs of a few quarter hours finish before the summaries run, some
    answered on another host (recomputed the slow way, between the others), all added in one
    pass that shares the quarters' recomputes."""
    rng = np.random.default_rng(seed)
    db = Database(db_path)
    start = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # a day's and a month's end among them
    with db.transaction() as cur:
        started = [random_start(cur, rng, start) for _ in range(40)]
    with db.transaction() as cur:
        for run_id in rng.permutation(started):
            random_finish(cur, rng, int(run_id))
    with db.cursor() as cur:
        queued = cur.execute("SELECT count(*) FROM run_summary_queue").fetchone()
    assert queued is not None and queued[0] == 40
    assert contents(db) == recomputed(db)
    db.close()


def random_start(cur: duckdb.DuckDBPyConnection, rng: np.random.Generator, start: datetime) -> int:
    host = str(rng.choice(list(HOSTS)))
    model = GEMMA if HOSTS[host] == "embedded" else str(rng.choice([LLAMA, QWEN]))
    run_id = start_run(
        cur,
        conversation_id=f"c{int(rng.integers(0, 6))}",
        message_id=int(rng.integers(1, 10**6)),
        model=model,
        backend=HOSTS[host],
        host=host,
        options={"num_ctx": 64} if rng.random() < 0.2 else {},
        prompt_chars=int(rng.integers(10, 4000)),
        client=str(rng.choice(["", "curl"])) or None,
    )
    # started at a random minute of two days, a few runs sharing each quarter hour
    minute = int(rng.integers(0, 2 * 24 * 4)) * 15 + int(rng.integers(0, 3))
    cur.execute(
        "UPDATE runs SET started_at = ? WHERE id = ?", [start + timedelta(minutes=minute), run_id]
    )
    return run_id


def random_finish(cur: duckdb.DuckDBPyConnection, rng: np.random.Generator, run_id: int) -> None:
    status = RunStatus(str(rng.choice(["complete", "complete", "stopped", "error"])))
    reported = status is RunStatus.COMPLETE and rng.random() < 0.8
    metrics = Metrics(
        prompt_tokens=int(rng.integers(1, 200)) if reported else None,
        completion_tokens=int(rng.choice([0, 3, 50, 51, 400])) if reported else None,
        total_duration_ns=int(rng.integers(1, 5) * 10**9) if reported else None,
        load_duration_ns=int(rng.choice([0, 10**6, 2 * 10**9])) if reported else None,
        prompt_eval_duration_ns=int(rng.integers(1, 10**8)) if reported else None,
        eval_duration_ns=int(rng.integers(1, 10**9)) if reported else None,
    )
    moved = None
    if rng.random() < 0.15:  # a retry answered on another host
        moved = ("ollama", str(rng.choice(["http://a:11434", "http://b:11434"])))
    finish_run(
        cur,
        run_id=run_id,
        status=status,
        error=None,
        ttft_ms=float(rng.uniform(1, 900)) if status is not RunStatus.ERROR else None,
        metrics=metrics,
        answered_by=moved,
    )


def in_conversation(cur: duckdb.DuckDBPyConnection, run_id: int, conversation: str) -> bool:
    row = cur.execute("SELECT conversation_id FROM runs WHERE id = ?", [run_id]).fetchone()
    return row is not None and row[0] == conversation


def import_copies(cur: duckdb.DuckDBPyConnection, source: str, conversation: str) -> None:
    """A conversation's finished runs coming back from a file: new ids, as the importer gives."""
    found = cur.execute(
        "SELECT * EXCLUDE (id) REPLACE (CAST(options AS VARCHAR) AS options) FROM runs "
        "WHERE conversation_id = ? AND status <> 'streaming'",
        [source],
    )
    names = [column[0] for column in found.description]
    rows = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
    for row, new_id in zip(rows, reserve_ids(cur, "runs_id_seq", len(rows)), strict=True):
        row |= {"id": new_id, "conversation_id": conversation}
    if not rows:
        return
    with tempfile.TemporaryDirectory() as folder:  # spooled to Parquet, as the importer does
        path = str(Path(folder) / "runs.parquet")
        pq.write_table(pa.Table.from_pylist(rows), path)
        insert_file(cur, "runs", path)


def spread_runs(start: datetime, count: int, seed: int = 5) -> list[Run]:
    """`count` complete runs over about 75 days from `start`, three models, varied timings."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, 75 * 86400, count))
    models = [LLAMA, QWEN, GEMMA]
    runs = []
    for i, offset in enumerate(offsets):
        eval_ns = int(rng.lognormal(21, 0.4))
        load_ns = int(rng.lognormal(16, 1.5))
        runs.append(
            Run(
                i + 1,
                f"r{i // 4}",
                models[int(rng.integers(0, 3))],
                "complete",
                start + timedelta(seconds=float(offset)),
                1.0,
                ttft_ms=float(rng.lognormal(5, 1)),
                prompt_tokens=int(rng.integers(20, 400)),
                completion_tokens=int(rng.integers(5, 300)),
                total_ns=load_ns + eval_ns,
                load_ns=load_ns,
                prompt_eval_ns=int(rng.lognormal(19, 0.5)),
                eval_ns=eval_ns,
            )
        )
    return runs


def bulk_insert(db: Database, runs: list[Run]) -> None:
    """Only the runs (no messages: per_model reads none), in one statement, then the rollup."""
    frame = pd.DataFrame(
        {
            "conversation_id": [r.conversation for r in runs],
            "message_id": [r.id for r in runs],
            "model": [r.model for r in runs],
            "backend": [r.backend for r in runs],
            "host": [r.host for r in runs],
            "options": "{}",
            "status": [r.status for r in runs],
            "started_at": [r.started for r in runs],
            "finished_at": [r.started + timedelta(seconds=r.seconds) for r in runs],
            "ttft_ms": [r.ttft_ms for r in runs],
            "prompt_tokens": [r.prompt_tokens for r in runs],
            "completion_tokens": [r.completion_tokens for r in runs],
            "total_duration_ns": [r.total_ns for r in runs],
            "load_duration_ns": [r.load_ns for r in runs],
            "prompt_eval_duration_ns": [r.prompt_eval_ns for r in runs],
            "eval_duration_ns": [r.eval_ns for r in runs],
        }
    )
    with db.transaction() as cur:
        cur.register("incoming", frame)
        cur.execute(f"INSERT INTO runs ({', '.join(frame)}) SELECT * FROM incoming")
        cur.unregister("incoming")
        rollup.rebuild_all(cur)


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(tmp_path_factory.mktemp("spread") / "chat.duckdb")
    with db.cursor() as cur:  # UTC: the digests' days are then the filter's days exactly
        cur.execute("SET GLOBAL TimeZone = 'UTC'")
    bulk_insert(db, spread_runs(datetime(2026, 1, 20, tzinfo=UTC), 2000))
    yield db
    db.close()


@pytest.mark.parametrize(
    "f",
    [
        StatsFilter(),
        StatsFilter(start=date(2026, 2, 1), end=date(2026, 3, 31)),  # two whole months
        StatsFilter(start=date(2026, 2, 10), end=date(2026, 3, 20)),  # days around a month
        StatsFilter(start=date(2026, 2, 3), end=date(2026, 2, 25), models=(QWEN,)),
    ],
)
def test_digest_quantiles_are_within_one_percent(spread: Database, f: StatsFilter) -> None:
    db = spread
    with db.cursor() as cur:
        exact = queries.per_model(cur, f).set_index("model")
        estimated = queries.per_model(cur, f, exact_up_to=0).set_index("model")
    assert list(estimated.index) == list(exact.index) and len(exact) >= 1
    sums = ["runs", "errors", "prompt_tokens", "completion_tokens", "max_load_ms"]
    assert estimated[sums].equals(exact[sums])
    for column in queries.QUANTILE_COLUMNS:
        if column == "median_answer_ms":
            continue  # no model here thought
        for model in exact.index:
            assert estimated.loc[model, column] == pytest.approx(
                exact.loc[model, column], rel=0.011
            ), (column, model)


def test_digest_spans_split_whole_months_from_the_days_around_them() -> None:
    def day(d: date) -> int:
        return (d - date(1970, 1, 1)).days

    feb, mar = rollup.month_of(day(date(2026, 2, 1))), rollup.month_of(day(date(2026, 3, 1)))
    assert StatsFilter(start=date(2026, 2, 1), end=date(2026, 3, 31)).digest_spans() == (
        (feb, mar),
        [],
    )
    assert StatsFilter(start=date(2026, 1, 30), end=date(2026, 3, 2)).digest_spans() == (
        (feb, feb),
        [
            (day(date(2026, 1, 30)), day(date(2026, 1, 31))),
            (day(date(2026, 3, 1)), day(date(2026, 3, 2))),
        ],
    )
    assert StatsFilter(start=date(2026, 2, 3), end=date(2026, 2, 5)).digest_spans() == (
        None,
        [(day(date(2026, 2, 3)), day(date(2026, 2, 5)))],
    )
    months, days = StatsFilter(end=date(2026, 2, 27)).digest_spans()
    assert months is not None and months[1] == rollup.month_of(day(date(2026, 1, 1)))
    assert days == [(day(date(2026, 2, 1)), day(date(2026, 2, 27)))]
    assert rollup.days_of_month(feb) == (day(date(2026, 2, 1)), day(date(2026, 2, 28)))


ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Chatham"]  # +5:30; DST; +12:45


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "f",
    [
        StatsFilter(),
        StatsFilter(start=date(2026, 2, 1), end=date(2026, 3, 31)),  # whole months
        StatsFilter(start=date(2026, 1, 25), end=date(2026, 3, 8), models=(QWEN, GEMMA)),
        StatsFilter(start=date(2026, 2, 14), end=date(2026, 2, 14)),  # one local day
        StatsFilter(end=date(2026, 2, 27), hosts=(LOCAL,)),
    ],
)
def test_summaries_answer_as_the_runs_do_in_any_zone(
    spread: Database, zone: str, f: StatsFilter
) -> None:
    """Reply lengths, conversations and switches from the summaries equal the same figures
    counted from the runs themselves, for filters whose local days straddle UTC days."""
    where, params = f.where()
    with spread.cursor() as cur:
        cur.execute(f"SET TimeZone = '{zone}'")
        lengths = queries.reply_lengths(cur, f)
        expected_lengths = cur.execute(
            f"""
            WITH lengths AS (SELECT completion_tokens AS n FROM runs r
                             WHERE {where} AND completion_tokens IS NOT NULL),
            width AS (SELECT greatest(1, ceil((max(n) + 1) / {queries.REPLY_LENGTH_BINS}))::BIGINT
                      AS w FROM lengths)
            SELECT (n // w) * w AS bin_start, (n // w) * w + w AS bin_end, count(*) AS replies
            FROM lengths, width GROUP BY ALL ORDER BY bin_start
            """,
            params,
        ).df()
        conversations = queries.totals(cur, f)["conversations"].iloc[0]
        expected_conversations = cur.execute(
            f"SELECT count(DISTINCT conversation_id) FROM runs r WHERE {where}", params
        ).fetchone()
        switches = queries.model_switches(cur, f)
        expected_switches = cur.execute(
            f"""
            SELECT model, count(*) AS switches,
                coalesce(sum(load_duration_ns), 0) / 1e9 AS load_seconds,
                median(load_duration_ns / 1e6) AS median_load_ms
            FROM (SELECT *, lag(model) OVER (PARTITION BY host ORDER BY id) AS previous
                  FROM runs) r
            WHERE {where} AND previous <> model
            GROUP BY model ORDER BY load_seconds DESC, model
            """,
            params,
        ).df()
        sums = queries.per_model_sums(cur, f).set_index("model").sort_index()
        expected_sums = cur.execute(
            f"""
            SELECT model, count(*) AS runs, sum(prompt_tokens) AS prompt_tokens,
                max(load_duration_ns / 1e6) AS max_load_ms
            FROM runs r WHERE {where} GROUP BY model ORDER BY model
            """,
            params,
        ).df()
        clock = queries.local_clock(cur)
        over_time, _ = queries.usage(cur, f, clock, "day")
        expected_days = cur.execute(
            f"""
            SELECT date_trunc('day', started_at)::TIMESTAMP AS period, model, count(*) AS runs
            FROM runs r WHERE {where} GROUP BY ALL ORDER BY period, model
            """,
            params,
        ).df()
    assert clock.whole_hours == (zone in ("UTC", "America/New_York"))
    assert list(sums.index) == list(expected_sums["model"])
    for column in ["runs", "prompt_tokens", "max_load_ms"]:
        assert sums[column].tolist() == expected_sums[column].tolist(), column
    pd.testing.assert_frame_equal(
        over_time[["period", "model", "runs"]], expected_days, check_dtype=False
    )
    assert int(lengths["replies"].sum()) > 0 or f.start == f.end
    pd.testing.assert_frame_equal(lengths, expected_lengths, check_dtype=False)
    assert expected_conversations is not None and conversations == expected_conversations[0]
    pd.testing.assert_frame_equal(switches, expected_switches, check_dtype=False)
