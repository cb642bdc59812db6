"""The queries behind export and import: whole conversations out as rows, new rows in, in bulk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

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


def conversation_order(
    cur: duckdb.DuckDBPyConnection, conversation_ids: list[str] | None
) -> list[str]:
    """The ids of these conversations (all when None) in export order: oldest first."""
    chosen = "true" if conversation_ids is None else "id IN (SELECT unnest($ids))"
    params = {} if conversation_ids is None else {"ids": list(conversation_ids)}
    rows = cur.execute(
        f"SELECT id FROM conversations WHERE {chosen} ORDER BY created_at, id", params
    ).fetchall()
    return [conversation_id for (conversation_id,) in rows]


def message_counts(
    cur: duckdb.DuckDBPyConnection, conversation_ids: list[str] | None
) -> list[tuple[str, int]]:
    """(conversation id, its number of messages) for these conversations (all when None)."""
    chosen = "true" if conversation_ids is None else "conversation_id IN (SELECT unnest($ids))"
    params = {} if conversation_ids is None else {"ids": list(conversation_ids)}
    rows = cur.execute(
        f"SELECT conversation_id, count(*) FROM messages WHERE {chosen} GROUP BY ALL", params
    ).fetchall()
    return [(conversation_id, int(count)) for conversation_id, count in rows]


def run_extras(cur: duckdb.DuckDBPyConnection, run_ids: list[int]) -> tuple[Rows, Rows, Rows]:
    """What the app keeps beside these runs: how each prompt was fitted into its window
    (run_context), what the knowledge base gave it (run_retrievals) and cited (run_citations).
    Every row carries `run_id`; in order of run id."""
    params = {"ids": run_ids}
    fits = named_rows(
        cur.execute(
            "SELECT run_id, model, estimated_tokens, window_tokens, dropped, summarised "
            "FROM run_context WHERE run_id IN (SELECT unnest($ids)) ORDER BY run_id",
            params,
        )
    )
    retrievals = named_rows(
        cur.execute(
            "SELECT run_id, collections, retrieval_ms, chunks_used FROM run_retrievals "
            "WHERE run_id IN (SELECT unnest($ids)) ORDER BY run_id",
            params,
        )
    )
    citations = named_rows(
        cur.execute(
            "SELECT * FROM run_citations WHERE run_id IN (SELECT unnest($ids)) "
            "ORDER BY run_id, number",
            params,
        )
    )
    return fits, retrievals, citations


def context_summary_rows(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> Rows:
    """The context summaries kept in these conversations (each with `conversation_id`)."""
    return named_rows(
        cur.execute(
            "SELECT conversation_id, covered, covered_hash, model, summary, created_at "
            "FROM context_summaries WHERE conversation_id IN (SELECT unnest($ids)) "
            "ORDER BY conversation_id, covered, covered_hash",
            {"ids": conversation_ids},
        )
    )


def attached_image_hashes(
    cur: duckdb.DuckDBPyConnection, conversation_ids: list[str] | None
) -> list[str]:
    """The hashes of the images these conversations' messages carry (all when None), sorted."""
    chosen = "true" if conversation_ids is None else "m.conversation_id IN (SELECT unnest($ids))"
    params = {} if conversation_ids is None else {"ids": list(conversation_ids)}
    rows = cur.execute(
        "SELECT DISTINCT mi.sha256 FROM message_images mi JOIN messages m ON m.id = mi.message_id "
        f"WHERE {chosen} ORDER BY 1",
        params,
    ).fetchall()
    return [sha256 for (sha256,) in rows]


def id_offset(
    cur: duckdb.DuckDBPyConnection, table: str, sequence: str, lowest: int, highest: int
) -> int:
    """What to add to a file's ids lowest..highest so they are fresh in `table`, keeping their
    order (and gaps): 0 when no stored row has an id from `lowest` up (an import into an empty
    database keeps the file's ids, so exporting it again gives the same file), else the
    distance to a block taken from the sequence. Either way the sequence ends up past the
    block, so rows added later never collide. Runs inside the import's write transaction
    (the only writer), so the block is contiguous."""
    [(stored,)] = cur.execute(f"SELECT count(*) FROM {table} WHERE id >= ?", [lowest]).fetchall()
    if not stored:
        advance_sequence(cur, sequence, highest)
        return 0
    [(start,)] = cur.execute(f"SELECT nextval('{sequence}')").fetchall()
    advance_sequence(cur, sequence, start + highest - lowest)
    return int(start) - lowest


def advance_sequence(cur: duckdb.DuckDBPyConnection, sequence: str, at_least: int) -> None:
    """Draw from the sequence until it has handed out `at_least` (DuckDB has no setval)."""
    [(current,)] = cur.execute(f"SELECT nextval('{sequence}')").fetchall()
    if current < at_least:
        cur.execute(
            f"SELECT max(nextval('{sequence}')) FROM range(?)", [at_least - current]
        ).fetchall()


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


# --- a big import: rows spooled to Parquet files, then inserted one statement per table ---

# DuckDB keeps a transaction's many small appends in memory until it commits; one INSERT from
# a Parquet file per table is written out as it goes, within this much memory.
IMPORT_MEMORY = "128MB"


class Spool:
    """Rows gathered per table into Parquet files in `folder`, typed as the tables' columns."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, folder: Path) -> None:
        self.cur, self.folder = cur, folder
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, table: str, rows: Rows) -> None:
        if not rows:
            return
        writer = self.writers.get(table)
        schema = writer.schema if writer else self.schema_of(table, list(rows[0]))
        try:  # a value the column can't hold (an INTEGER past 2^31, say) is the file's fault
            batch = pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise value_does_not_fit(table, error) from error
        if writer is None:
            writer = pq.ParquetWriter(self.folder / f"{table}.parquet", schema)
            self.writers[table] = writer
        writer.write_table(batch)

    def schema_of(self, table: str, names: list[str]) -> pa.Schema:
        table_schema = self.cur.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
        return pa.schema([table_schema.field(name) for name in names])

    def insert_all(self) -> None:
        """Every spooled table into the database, within IMPORT_MEMORY."""
        for writer in self.writers.values():
            writer.close()
        with memory_limited(self.cur, IMPORT_MEMORY):
            for table in self.writers:
                insert_file(self.cur, table, str(self.folder / f"{table}.parquet"))


def insert_file(cur: duckdb.DuckDBPyConnection, table: str, path: str) -> None:
    try:
        cur.execute(
            f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet($path)", {"path": path}
        ).fetchall()
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as error:
        raise value_does_not_fit(table, error) from error
    if table == "runs":  # imported runs count in Stats at once
        rollup.rebuild_runs(cur, "id IN (SELECT id FROM read_parquet($path))", {"path": path})


@contextmanager
def memory_limited(cur: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory limit lowered for a while (it holds for the whole database)."""
    [(before,)] = cur.execute("SELECT current_setting('memory_limit')").fetchall()
    cur.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        cur.execute(f"SET memory_limit = '{before}'")
