"""The queries behind export and import: whole conversations out as rows, new rows in, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from chatcore.errors import InvalidInput
from chatcore.storage import rollup
from chatcore.storage.runs import named_rows

Rows = list[dict[str, Any]]


def conversation_rows(
    cur: duckdb.DuckDBPyConnection,
    conversation_ids: list[str] | None,
    message_fields: Sequence[str],
    run_fields: Sequence[str],
) -> tuple[Rows, Rows, Rows]:
    """These conversations (all when None), their messages and their runs, in order of id.

    Messages carry `conversation_id` and runs `message_id` beside the fields asked for."""
    chosen = "true" if conversation_ids is None else "c.id IN (SELECT unnest($ids))"
    params = {} if conversation_ids is None else {"ids": list(conversation_ids)}
    conversations = named_rows(
        cur.execute(
            "SELECT c.id, c.title, c.created_at, c.updated_at, o.message_id AS open_message_id "
            "FROM conversations c LEFT JOIN open_branches o ON o.conversation_id = c.id "
            f"WHERE {chosen} ORDER BY c.created_at, c.id",
            params,
        )
    )
    messages = named_rows(
        cur.execute(
            f"SELECT conversation_id, {', '.join(message_fields)} FROM messages m "
            f"WHERE m.conversation_id IN (SELECT id FROM conversations c WHERE {chosen}) "
            "ORDER BY m.id",
            params,
        )
    )
    runs = named_rows(
        cur.execute(
            f"SELECT message_id, {', '.join(run_fields)} FROM runs r "
            f"WHERE r.conversation_id IN (SELECT id FROM conversations c WHERE {chosen}) "
            "ORDER BY r.id",
            params,
        )
    )
    return conversations, messages, runs


def existing_ids(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> set[str]:
    rows = cur.execute(
        "SELECT id FROM conversations WHERE id IN (SELECT unnest(?))", [conversation_ids]
    ).fetchall()
    return {conversation_id for (conversation_id,) in rows}


def reserve_ids(cur: duckdb.DuckDBPyConnection, sequence: str, count: int) -> list[int]:
    """`count` fresh values of a sequence, ascending; safe beside concurrent inserts."""
    if not count:
        return []
    rows = cur.execute(f"SELECT nextval('{sequence}') FROM range(?)", [count]).fetchall()
    return sorted(value for (value,) in rows)


def value_does_not_fit(table: str, error: Exception) -> InvalidInput:
    return InvalidInput(f"A value in the file does not fit the {table} table: {error}")


def insert_rows(cur: duckdb.DuckDBPyConnection, table: str, rows: Rows) -> None:
    """Bulk-insert rows (dicts by column name) through Arrow, typed as the table's own columns."""
    if not rows:
        return
    table_schema = cur.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    schema = pa.schema([table_schema.field(name) for name in rows[0]])
    try:  # a value the column can't hold (an INTEGER past 2^31, say) is the file's fault
        incoming = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise InvalidInput(
            f"A value in the file does not fit the {table} table: {error}"
        ) from error
    columns = ", ".join(schema.names)
    cur.register("incoming", incoming)
    try:
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as error:
        raise InvalidInput(
            f"A value in the file does not fit the {table} table: {error}"
        ) from error
    finally:
        cur.unregister("incoming")
    if table == "runs":  # imported runs count in Stats at once
        rollup.rebuild_runs(cur, "id IN (SELECT unnest($ids))", {"ids": [r["id"] for r in rows]})
