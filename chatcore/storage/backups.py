"""Backups of the DuckDB file: a consistent copy taken by DuckDB itself while the app runs.

`COPY FROM DATABASE` reads one snapshot of every table (DuckDB's MVCC), so replies committing
meanwhile are either wholly in the copy or wholly out of it; sequences keep their values, so a
restored file goes on numbering where the original was. The copy is written to a `.partial` file
and renamed into place only when whole: a full disk leaves no half backup behind.
"""

from __future__ import annotations

import os
import secrets
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import duckdb

from chatcore.errors import StorageFailed
from chatcore.storage.db import CONNECT_CONFIG


def quoted_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def copy_database(
    cur: duckdb.DuckDBPyConnection,
    target: Path,
    hold: AbstractContextManager[object] | None = None,
) -> None:
    """Write a copy of the open database to `target` (which must not exist). `hold` is held
    only while the copy's snapshot is taken (Database.turns.quiet(): no turn half-written in
    it); what commits after that is not in the copy."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    alias = f"backup_{secrets.token_hex(4)}"
    source = cur.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    try:
        cur.execute(f"ATTACH {quoted_path(partial)} AS {alias}")
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                with hold or nullcontext():
                    cur.execute("SELECT count(*) FROM schema_version").fetchone()  # the snapshot
                cur.execute(f'COPY FROM DATABASE "{source}" TO {alias}')
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            cur.execute(f"DETACH {alias}")
        os.replace(partial, target)
    except (duckdb.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
        raise StorageFailed(
            f"The backup could not be written ({str(error).splitlines()[0]}); the database "
            "itself is unchanged. Free some disk space and try again."
        ) from error


def conversation_count(path: Path) -> int:
    """How many conversations a backup holds; raises duckdb.Error when it can't be read."""
    connection = duckdb.connect(str(path), read_only=True, config=CONNECT_CONFIG)
    try:
        row = connection.execute("SELECT count(*) FROM conversations").fetchone()
        return int(row[0]) if row else 0
    finally:
        connection.close()
