"""A reply's own rows (its message, the open branch's end, its run, how its prompt was fitted,
its citations), written on a thread of their own just after the user's turn commits.

Only the user's turn has to be committed before any reply text is shown (architecture rule 4);
the reply's rows are needed only when its text is first stored (a checkpoint, or its outcome).
Writing them beside the first token instead of before it takes four statements and a commit,
5-10 ms here, off the time to the first token. One thread writes them, in the order the sends
came; `Reply.message_id` and `run_id` wait for them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import duckdb

from chatcore.storage.db import Database

T = TypeVar("T")
Work = Callable[[duckdb.DuckDBPyConnection], T]


class RowWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reply-rows")

    def write(self, done: Future[T], work: Work[T]) -> None:
        """Run `work` in a transaction of its own; its result (or what it raised) goes to
        `done`. Nothing is rolled back elsewhere when it fails: the reply then ends in error."""
        self._pool.submit(self._run, done, work)

    def _run(self, done: Future[T], work: Work[T]) -> None:
        try:
            with self._db.transaction() as cur:
                result = work(cur)
        except BaseException as error:  # handed to whoever waits for the rows
            done.set_exception(error)
            return
        done.set_result(result)

    def close(self) -> None:
        """Wait for the rows already asked for (before the database closes)."""
        self._pool.shutdown(wait=True)
