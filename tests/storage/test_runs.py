"""One definition of a stored run: its columns match the table, and every reader gets them all."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from chatcore.storage import conversations, votes
from chatcore.storage.db import Database
from chatcore.storage.runs import METRIC_COLUMNS, RUN_COLUMNS, finish_run, start_run
from chatcore.transfer_format import RunV2
from chatcore.types import Metrics, RunStatus

ROOT = Path(__file__).resolve().parents[2]
EVERY_METRIC = Metrics(
    prompt_tokens=11,
    completion_tokens=22,
    total_duration_ns=33,
    load_duration_ns=44,
    prompt_eval_duration_ns=55,
    eval_duration_ns=66,
    done_reason="stop",
    context_dropped=2,
    num_ctx=8192,
)


def table_columns(db: Database, table: str) -> list[str]:
    with db.cursor() as cur:
        return [row[0] for row in cur.execute(f"DESCRIBE {table}").fetchall()]


def test_the_run_columns_are_the_tables_columns(db_path: Path) -> None:
    db = Database(db_path)
    assert sorted(RUN_COLUMNS) == sorted(table_columns(db, "runs"))
    db.close()


def test_every_metric_is_a_run_column() -> None:
    assert tuple(f.name for f in fields(Metrics)) == METRIC_COLUMNS
    assert set(METRIC_COLUMNS) <= set(RUN_COLUMNS)


def test_the_export_format_keeps_every_run_column() -> None:
    """The file format is versioned on its own; a column it lacks would be lost on a round trip."""
    structural = {"conversation_id", "message_id"}  # the file nests runs under their message
    assert set(RUN_COLUMNS) - structural == set(RunV2.model_fields)


def stored_run(db: Database) -> tuple[int, int]:
    with db.transaction() as cur:
        conversations.create_conversation(cur, "c1", "a title")
        conversations.add_message(cur, "c1", "user", "hi")
        message_id = conversations.add_message(cur, "c1", "assistant", "hello")
        run_id = start_run(
            cur,
            conversation_id="c1",
            message_id=message_id,
            model="m",
            backend="ollama",
            host="h",
            options={"temperature": 0.5},
            prompt_chars=2,
        )
        finish_run(
            cur,
            run_id=run_id,
            status=RunStatus.COMPLETE,
            error=None,
            ttft_ms=12.5,
            metrics=EVERY_METRIC,
        )
    return message_id, run_id


def test_every_metric_comes_back_in_the_conversation_and_in_compare(db_path: Path) -> None:
    """Compare entries once lost num_ctx: a reader with its own column list drifted."""
    db = Database(db_path)
    _, run_id = stored_run(db)
    with db.transaction() as cur:
        round_id = votes.create_round(cur, "hi", True, {})
        votes.add_entry(
            cur, round_id=round_id, label="A", position=0, conversation_id="c1", run_id=run_id
        )
    with db.cursor() as cur:
        reply = conversations.conversation_messages(cur, "c1")[-1]
        stored_round = votes.get_round(cur, round_id)
    db.close()
    assert reply.run is not None and reply.run.metrics == EVERY_METRIC
    assert reply.run.status is RunStatus.COMPLETE and reply.run.options == {"temperature": 0.5}
    assert stored_round is not None
    assert stored_round.entries[0].run.metrics == EVERY_METRIC


def test_the_run_column_list_is_written_once() -> None:
    """Any comma-separated list of three metric columns in a row outside the one definition is
    a copy that can drift."""
    three = ",\\s*".join(re.escape(c) for c in METRIC_COLUMNS[3:6])
    copies = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "chatcore").rglob("*.py")
        if re.search(three, path.read_text())
    ]
    assert copies == []
