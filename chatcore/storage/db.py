"""The process's one DuckDB database: a cursor per unit of work, explicit transactions."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from chatcore.errors import DatabaseLocked
from chatcore.storage.migrations import apply_migrations
from chatcore.storage.runs import mark_interrupted_runs

# Extensions must never be fetched at run time: a missing one fails at once instead.
CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = connect(self.path)
        self._lock = threading.Lock()
        # One writing transaction at a time: concurrent ones touching the same row (two chats
        # creating one conversation, two replies touching it) would fail to commit in DuckDB.
        self._write_lock = threading.Lock()
        apply_migrations(self._connection)
        with self.transaction() as cur:
            mark_interrupted_runs(cur)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one unit of work: a connection is not shared between threads."""
        with self._lock:
            cur = self._connection.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._write_lock, self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self._connection.close()


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), config=CONNECT_CONFIG)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        raise DatabaseLocked(lock_message(path, str(error))) from error


def lock_message(path: Path, error: str) -> str:
    holder = ""
    if match := re.search(r"PID (\d+)", error):
        pid = match.group(1)
        holder = f" (process {pid}{process_name(pid)})"
    return (
        f"The chat database {path} is in use by another process{holder}. "
        "Only one process can open it: close the other dashboard, or start this one with "
        "CHAT_DB pointing to another file."
    )


def process_name(pid: str) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return ""
    return f": {cmdline.decode(errors='replace')[:120]}" if cmdline else ""
