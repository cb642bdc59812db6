"""The Stats rollup stays equal to the runs through every way runs arrive, change and go, and the
digest's quantiles (used beyond EXACT_QUANTILES_UP_TO runs) stay within 1% of the exact ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.stats import StatsFilter
from chatcore.storage import rollup
from chatcore.storage import stats as queries
from chatcore.storage.db import Database
from chatcore.storage.runs import mark_interrupted_runs, start_run
from testkit.stats_data import GEMMA, LLAMA, QWEN, Run

DERIVED = ["run_rollup", "run_digest", "run_digest_month", "run_context_hits"]


def contents(db: Database) -> dict[str, list[tuple[object, ...]]]:
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


def test_migration_13_backfills_existing_runs(db_path: Path) -> None:
    db = Database(db_path)
    start = datetime(2026, 1, 30, 22, tzinfo=UTC)
    bulk_insert(db, spread_runs(start, 300))
    expected = contents(db)
    with db.cursor() as cur:  # as a database made before migration 13
        for table in DERIVED:
            cur.execute(f"DROP TABLE {table}")
        cur.execute("DELETE FROM schema_version WHERE version = 13")
    db.close()
    reopened = Database(db_path)
    assert contents(reopened) == expected
    assert sum(row[6] for row in expected["run_rollup"]) == 300
    reopened.close()


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
