"""Turns at something only a few callers may use at once: first come, first served, bounded."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class QueueFull(Exception):
    """Too many callers are already waiting."""


class WaitedTooLong(Exception):
    """The turn did not come within the time allowed."""


class Ticket:
    """A caller's place in the queue."""


class Turns:
    """A FIFO of callers for one resource; the first `capacity` of them hold it (a model's
    parallel slots), the rest wait in order."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = max(1, capacity)
        self._changed = threading.Condition()
        self._queue: deque[Ticket] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting behind the ones holding the resource."""
        with self._changed:
            return max(0, len(self._queue) - self.capacity)

    def join(self, max_waiting: int) -> Ticket:
        """A place at the back of the queue; raises QueueFull when max_waiting already wait."""
        ticket = Ticket()
        with self._changed:
            if len(self._queue) >= self.capacity + max_waiting:
                raise QueueFull
            self._queue.append(ticket)
        return ticket

    def wait_for_turn(self, ticket: Ticket, timeout: float) -> bool:
        """True once `ticket` holds the resource; False when `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._holds(ticket), timeout)

    def _holds(self, ticket: Ticket) -> bool:
        return ticket in list(self._queue)[: self.capacity]

    def ahead_of(self, ticket: Ticket) -> int:
        """How many replies must finish before this one starts."""
        with self._changed:
            if ticket not in self._queue:
                return 0
            return max(0, self._queue.index(ticket) - self.capacity + 1)

    def leave(self, ticket: Ticket) -> None:
        """Give up the place (waiting or holding); the next in line is woken. Idempotent."""
        with self._changed:
            if ticket in self._queue:
                self._queue.remove(ticket)
                self._changed.notify_all()

    @contextmanager
    def turn(self, max_waiting: int, timeout: float) -> Iterator[None]:
        """Hold the resource for the `with` block; raises QueueFull or WaitedTooLong."""
        ticket = self.join(max_waiting)
        try:
            if not self.wait_for_turn(ticket, timeout):
                raise WaitedTooLong
            yield
        finally:
            self.leave(ticket)
