"""The one definition of a stored run: its columns, read and written by name.

The metric columns are the fields of `Metrics`, under the same names, so a metric added to the
type is stored, read back and exported without another list to keep in step (tests compare these
names with the table itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import duckdb

from chatcore.storage import rollup
from chatcore.types import Metrics, RunRecord, RunStatus

METRIC_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Metrics))
# What a RunRecord holds, beside its metrics.
RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "model",
    "backend",
    "host",
    "status",
    "error",
    "ttft_ms",
    "options",
    "request_id",
    "attempts",
    "client",
    *METRIC_COLUMNS,
)
# The columns only the table holds: who the run belongs to, when, and the prompt's size.
BOOKKEEPING_COLUMNS: tuple[str, ...] = (
    "conversation_id",
    "message_id",
    "started_at",
    "finished_at",
    "prompt_chars",
)
RUN_COLUMNS: tuple[str, ...] = (*RECORD_COLUMNS, *BOOKKEEPING_COLUMNS)
PREFIX = "run_"


def run_select(alias: str = "r") -> str:
    """The select list of a RunRecord from the runs row `alias`, each column named run_<column>."""
    return ", ".join(f"{alias}.{column} AS {PREFIX}{column}" for column in RECORD_COLUMNS)


def run_reader(at: Mapping[str, Any]) -> Callable[[Any], RunRecord | None]:
    """A reader of the RunRecord in rows selected with run_select(): `at` gives each column's
    key in a row (its position in a tuple, or its name in a dict), looked up once per query,
    not once per row (a 1,000-message conversation reads a thousand runs)."""
    key = {column: at[PREFIX + column] for column in RECORD_COLUMNS}
    metrics = [key[column] for column in METRIC_COLUMNS]  # in the order of the fields

    def read(row: Any) -> RunRecord | None:
        if row[key["id"]] is None:
            return None
        stored = row[key["options"]]
        return RunRecord(
            id=row[key["id"]],
            model=row[key["model"]],
            backend=row[key["backend"]],
            host=row[key["host"]],
            status=RunStatus(row[key["status"]]),
            error=row[key["error"]],
            ttft_ms=row[key["ttft_ms"]],
            options=json.loads(stored) if isinstance(stored, str) else (stored or {}),
            request_id=row[key["request_id"]],
            attempts=row[key["attempts"]] or 1,
            client=row[key["client"]],
            metrics=Metrics(*[row[position] for position in metrics]),
        )

    return read


def column_positions(result: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Each column of an executed query by name: its position in the rows."""
    return {column[0]: index for index, column in enumerate(result.description or ())}


# A row from named_rows() keys each column by its own name.
run_from = run_reader({PREFIX + column: PREFIX + column for column in RECORD_COLUMNS})


def named_rows(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of an executed query as dicts by column name."""
    names = [column[0] for column in result.description or ()]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def start_run(
    cur: duckdb.DuckDBPyConnection,
    *,
    conversation_id: str,
    message_id: int,
    model: str,
    backend: str,
    host: str,
    options: dict[str, Any],
    prompt_chars: int,
    request_id: str | None = None,
    client: str | None = None,
) -> int:
    """A run in status 'streaming'; prompt_chars (the whole prompt's length) lets Stats spot
    prompts that a server silently cut to fit its context window."""
    values = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "model": model,
        "backend": backend,
        "host": host,
        "options": json.dumps(options),
        "status": RunStatus.STREAMING.value,
        "prompt_chars": prompt_chars,
        "request_id": request_id,
        "client": client,
    }
    row = cur.execute(
        f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('$' + k for k in values)}) "
        "RETURNING id",
        values,
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_run(
    cur: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    status: RunStatus,
    error: str | None,
    ttft_ms: float | None,
    metrics: Metrics,
    answered_by: tuple[str, str] | None = None,
    attempts: int = 1,
) -> None:
    """The run's outcome; `answered_by` (backend, host) when a retry moved it to another host."""
    values: dict[str, Any] = {
        "status": RunStatus(status).value,
        "error": error,
        "ttft_ms": ttft_ms,
        "attempts": attempts,
    }
    if answered_by is not None:
        values["backend"], values["host"] = answered_by
    values |= metrics.as_dict()
    assignments = ", ".join(f"{column} = ${column}" for column in values)
    streamed_on = rollup.streaming_host(cur, run_id)
    cur.execute(
        f"UPDATE runs SET {assignments}, finished_at = now() WHERE id = $run_id",
        {**values, "run_id": run_id},
    )
    # Stats adds it just after this transaction (summarise_finished), or before it next reads
    rollup.queue_finished(cur, run_id, streamed_on)


def summarise_finished(cur: duckdb.DuckDBPyConnection, at_most: int | None = None) -> int:
    """Add the runs finished since the last call to the Stats summaries (chatcore/storage/
    rollup.py), `at_most` of them (None: all): run in its own transaction after finish_run's,
    so that storing a reply's outcome never waits for it. Returns how many runs were added."""
    return rollup.summarise_queued(cur, at_most)


def mark_interrupted_runs(cur: duckdb.DuckDBPyConnection) -> None:
    """Runs still 'streaming' at open belong to a process that died: keep their text, mark them."""
    streaming = {"streaming": RunStatus.STREAMING.value}
    days = rollup.days_of_runs(cur, "status = $streaming", streaming)
    first_id = rollup.first_id_of_runs(cur, "status = $streaming", streaming)
    cur.execute(
        """
        UPDATE runs SET status = $error, finished_at = now(),
            error = 'Interrupted: the app stopped while this reply was streaming.'
        WHERE status = $streaming
        """,
        {"error": RunStatus.ERROR.value, "streaming": RunStatus.STREAMING.value},
    )
    rollup.rebuild_days(cur, days, first_id)  # also adds the runs a crash left queued
