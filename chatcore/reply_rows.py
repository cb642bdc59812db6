"""A reply's own rows (its message, the open branch's end, its run, how its prompt was fitted,
its citations), written on a thread of their own just after the user's turn commits.

Only the user's turn has to be committed before any reply text is shown (architecture rule 4);
the reply's rows are needed only when its text is first stored (a checkpoint, or its outcome).
Writing them beside the first token instead of before it takes four statements and a commit,
5-10 ms here, off the time to the first token. One thread writes them, in the order the sends
came; `Reply.message_id` and `run_id` wait for them.

Two sends to one conversation at once must still each find the other's reply where it goes (the
second user message follows the first one's reply, not the first user message): a conversation's
turn is held (TurnLocks) from before its user message is written until its reply's rows are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import duckdb

from chatcore.storage.db import Database

T = TypeVar("T")
# The longest the rows wait for their reply's first piece (a reply queued at a busy model has
# none for a while; the rows of the sends behind it wait in line).
AFTER_WAIT_SECONDS = 0.05
Work = Callable[[duckdb.DuckDBPyConnection], T]


class RowWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reply-rows")

    def write(
        self,
        done: Future[T],
        work: Work[T],
        then: Callable[[], None],
        after: threading.Event | None = None,
    ) -> None:
        """Run `work` in a transaction of its own, once `after` is set (the reply's first piece
        went out) or AFTER_WAIT_SECONDS passed; its result (or what it raised) goes to `done`,
        then `then` runs (the turn's release). Nothing is rolled back elsewhere when it fails:
        the reply then ends in error."""
        self._pool.submit(self._run, done, work, then, after)

    def _run(
        self,
        done: Future[T],
        work: Work[T],
        then: Callable[[], None],
        after: threading.Event | None,
    ) -> None:
        if after is not None:  # not while the first piece is on its way: they share the GIL
            after.wait(AFTER_WAIT_SECONDS)
        try:
            with self._db.transaction() as cur:
                result = work(cur)
        except BaseException as error:  # handed to whoever waits for the rows
            done.set_exception(error)
            return
        finally:
            then()
        done.set_result(result)

    def close(self) -> None:
        """Wait for the rows already asked for (before the database closes)."""
        self._pool.shutdown(wait=True)


class TurnLocks:
    """One lock per conversation being written to, gone again when nobody holds or waits for
    it. Released by whichever thread finished the turn (a Lock, not an RLock)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def acquire(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        lock.acquire()

    def release(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
        lock.release()
