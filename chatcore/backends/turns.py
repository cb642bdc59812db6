"""Turns at something only one caller may use at a time: first come, first served, bounded."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class QueueFull(Exception):
    """Too many callers are already waiting."""


class WaitedTooLong(Exception):
    """The turn did not come within the time allowed."""


class Turns:
    """A FIFO of callers for one resource; the one at the head holds it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: deque[object] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting behind the one holding the resource."""
        with self._changed:
            return max(0, len(self._queue) - 1)

    @contextmanager
    def turn(self, max_waiting: int, timeout: float) -> Iterator[None]:
        """Hold the resource for the `with` block; raises QueueFull or WaitedTooLong."""
        ticket = object()
        with self._changed:
            if len(self._queue) > max_waiting:  # one holds it, max_waiting may wait
                raise QueueFull
            self._queue.append(ticket)
            try:
                came = self._changed.wait_for(lambda: self._queue[0] is ticket, timeout)
            except BaseException:
                self._leave(ticket)
                raise
            if not came:
                self._leave(ticket)
                raise WaitedTooLong
        try:
            yield
        finally:
            with self._changed:
                self._leave(ticket)

    def _leave(self, ticket: object) -> None:
        self._queue.remove(ticket)
        self._changed.notify_all()
