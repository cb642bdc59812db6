"""The process's one DuckDB database: a cursor per unit of work, explicit transactions."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from chatcore.errors import DatabaseLocked, DatabaseUnreadable, StorageFailed
from chatcore.storage.migrations import apply_migrations
from chatcore.storage.runs import mark_interrupted_runs

# Extensions must never be fetched at run time: a missing one fails at once instead.
CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One writing transaction at a time: concurrent ones touching the same row (two chats
        # creating one conversation, two replies touching it) would fail to commit in DuckDB.
        self._write_lock = threading.Lock()
        # Stats' summaries are written beside the sends (their rows are theirs alone): one such
        # transaction at a time, and none beside another change of the summaries.
        self._summaries_lock = threading.Lock()
        self.turns = TurnGate()  # sends between their two commits; copies wait for none
        # Writing transactions ended so far (committed or rolled back) and restores: what was
        # read at one count still holds while the count is the same (see `transaction_number`).
        self.transactions = 0
        self._connection = open_checked(self.path)
        self.closed = False

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
    def transaction(self, summaries: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing transaction; `summaries`: it also changes Stats' summaries (deletes runs,
        imports them), so none of summaries_transaction's runs beside it."""
        with self._write_lock, self._summaries_lock if summaries else nullcontext():
            try:
                with self._begun() as cur:
                    yield cur
            finally:
                self.transactions += 1

    @property
    def transaction_number(self) -> int:
        """Inside `transaction()`: the count `transactions` has once this one ended and until
        the next writing transaction (summaries_transaction's do not count: they change only
        Stats' summaries)."""
        return self.transactions + 1

    @contextmanager
    def summaries_transaction(self, yielding: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction that writes only Stats' summaries and their queue: beside the other
        writers (no row of theirs is touched, so DuckDB sees no conflict), so that a send never
        waits for the 20 statements of a finished run's summary. `yielding` (work in the
        background): each statement waits while a send's turn is in flight, so that a turn's
        commit does not share the interpreter and DuckDB with a pass that takes about 60 ms of
        statements for one run."""
        with self._summaries_lock, self._begun() as cur:
            # a YieldingCursor is used as a cursor is (execute, then the cursor's own methods)
            yield YieldingCursor(cur, self.turns) if yielding else cur  # type: ignore[misc]

    @contextmanager
    def _begun(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        # after any transaction or cursor being opened on another thread (Stats' summaries)
        with self._write_lock, self._summaries_lock, self._lock:
            self.closed = True
            self._connection.close()

    def replace_with(self, source: Path) -> Path:
        """Swap this database's file for a copy of `source` (a backup), while the app runs.

        The current file is kept beside it as `<name>.before-restore-<time>`, so a restore loses
        nothing; on any failure that file is put back and opened again. Returns its path.
        """
        with self._write_lock, self._summaries_lock, self._lock:
            self.transactions += 1  # everything read before is of another file
            self._connection.close()
            try:
                aside = replace_file(self.path, source)
            except BaseException:
                self._connection = open_checked(self.path)
                raise
            try:
                self._connection = open_checked(self.path)
            except BaseException:
                os.replace(aside, self.path)
                self._connection = open_checked(self.path)
                raise
        return aside


class TurnGate:
    """A send commits its user's message, then its reply's rows in a second transaction
    (chatcore/reply_rows.py). A copy of the database (a backup) must not see a turn between the
    two: `quiet()` waits until none is in flight and lets none start while it is held. Work
    that can wait (Stats' summaries) waits for a pause in the turns: `wait_for_a_pause`."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._quiet = 0  # copies holding the gate shut
        self._last_busy = float("-inf")  # time.monotonic() of the newest turn or reply's end

    def enter(self) -> None:
        with self._changed:
            while self._quiet:
                self._changed.wait()
            self._in_flight += 1
            self._last_busy = time.monotonic()  # a wait for a pause sees it when it wakes

    def leave(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def wait_while_in_flight(self, at_most: float) -> None:
        """Return once no turn is in flight, or after `at_most` seconds."""
        deadline = time.monotonic() + at_most
        with self._changed:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)

    def reply_ended(self) -> None:
        """A reply's outcome is stored: a pause is counted from here too. A tool sends its next
        request as soon as it has the answer, and Stats' summary of the reply, run just then,
        took the interpreter from that request on its way to the first token."""
        with self._changed:
            self._last_busy = time.monotonic()

    def wait_for_a_pause(
        self, seconds: float, at_most: float, given_up: Callable[[], bool]
    ) -> None:
        """Return once no turn is in flight and none has begun (nor a reply ended) for
        `seconds`, or after `at_most` seconds of turns without such a pause, or when
        `given_up()` says so (checked whenever a turn ends, and on `poke`)."""
        deadline = time.monotonic() + at_most
        with self._changed:
            while not given_up():
                now = time.monotonic()
                paused_at = self._last_busy + seconds if not self._in_flight else now + seconds
                if paused_at <= now or deadline <= now:
                    return
                self._changed.wait(min(paused_at, deadline) - now)

    def poke(self) -> None:
        """Wake the waits for a pause (to check their `given_up`)."""
        with self._changed:
            self._changed.notify_all()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        with self._changed:
            self._quiet += 1
            while self._in_flight:
                self._changed.wait()
        try:
            yield
        finally:
            with self._changed:
                self._quiet -= 1
                self._changed.notify_all()


def open_checked(path: Path) -> duckdb.DuckDBPyConnection:
    """Connect, migrate and mark interrupted runs; a damaged file is reported, never replaced."""
    connection = connect(path)
    try:
        apply_migrations(connection)
        with transaction_on(connection) as cur:
            mark_interrupted_runs(cur)
    except duckdb.Error as error:
        connection.close()
        if not is_damage(error):  # a migration's own mistake: a bug to see, not a bad file
            raise
        raise unreadable(path, error) from error
    return connection


def is_damage(error: duckdb.Error) -> bool:
    """Errors that mean the file itself is bad (short, corrupt, not a database)."""
    text = str(error).lower()
    return isinstance(error, duckdb.IOException | duckdb.SerializationException) or any(
        word in text for word in ("corrupt", "checksum", "not a valid duckdb")
    )


@contextmanager
def transaction_on(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    cur = connection.cursor()
    try:
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
    finally:
        cur.close()


def unreadable(path: Path, error: BaseException) -> DatabaseUnreadable:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return DatabaseUnreadable(
        f"The chat database {path} can't be read ({first_line}). It was left as it is and "
        "nothing was put in its place. Restore a backup, or start with CHAT_DB pointing to "
        "another file.",
        str(path),
    )


def replace_file(path: Path, source: Path) -> Path:
    """Put a copy of `source` at `path`; the file that was there moves aside (returned)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    aside = path.with_name(f"{path.name}.before-restore-{stamp}")
    partial = path.with_name(f"{path.name}.restoring")
    try:
        shutil.copyfile(source, partial)  # the whole copy first: a full disk leaves the old file
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise StorageFailed(f"The backup could not be copied into place: {error}") from error
    if path.exists():
        os.replace(path, aside)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():  # the old file's log belongs with it
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    os.replace(partial, path)
    return aside


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), config=CONNECT_CONFIG)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise unreadable(path, error) from error
        raise DatabaseLocked(lock_message(path, str(error))) from error
    except duckdb.Error as error:
        raise unreadable(path, error) from error


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


YIELD_AT_MOST = 1.0  # seconds a background statement waits for the turns in flight


class YieldingCursor:
    """A cursor whose statements each wait while a send's turn is in flight (TurnGate): work
    that can wait goes between the sends' commits, a statement at a time."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, turns: TurnGate) -> None:
        self._cursor = cursor
        self._turns = turns

    def execute(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        self._turns.wait_while_in_flight(YIELD_AT_MOST)
        return self._cursor.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
