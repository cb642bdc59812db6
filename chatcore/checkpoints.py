"""A streaming reply's text saved every few seconds, by one thread for every reply.

The token loop reads no clock: a thread saves what has arrived, so a stream that stalls mid-reply
is saved all the same, and a killed process loses at most one interval of it. One thread serves
every reply (it waits for whichever is due first): a thread of its own, started at a reply's first
token, cost 0.5-3 ms of that token while the other threads of the send were busy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from chatcore.logs import event

Save = Callable[[str, str], None]  # (answer so far, reasoning so far)


class Checkpoints:
    """One reply's checkpoints: `start` at its first piece, `stop` before its outcome is stored
    (a save under way is waited for, and none follows)."""

    def __init__(self, parts: list[str], thoughts: list[str], save: Save, every: float) -> None:
        self._parts = parts
        self._thoughts = thoughts
        self._save = save
        self.every = every
        self._saving = threading.Lock()
        self._saved = (0, 0)
        self._started = False
        self._stopped = False

    def start(self) -> None:
        if not self._started:  # the first piece of either kind starts it, once
            self._started = True
            TICKER.add(self)

    def stop(self) -> None:
        TICKER.remove(self)
        with self._saving:
            self._stopped = True

    def save_if_changed(self) -> None:
        with self._saving:
            if self._stopped:
                return
            # appends from the streaming thread only ever add
            counts = (len(self._parts), len(self._thoughts))
            if counts != self._saved:
                self._save("".join(self._parts[: counts[0]]), "".join(self._thoughts[: counts[1]]))
                self._saved = counts


class Ticker:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[Checkpoints, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, checkpoints: Checkpoints) -> None:
        with self._changed:
            self._due[checkpoints] = time.monotonic() + checkpoints.every
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, checkpoints: Checkpoints) -> None:
        with self._changed:
            self._due.pop(checkpoints, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due:
                    self._changed.wait()
                checkpoints, when = min(self._due.items(), key=lambda item: item[1])
                wait = when - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)  # or until one is added or removed
                    continue
                self._due[checkpoints] = when + checkpoints.every
            try:
                checkpoints.save_if_changed()  # outside the lock: others are added meanwhile
            except Exception as error:  # one failed save must not stop the other replies'
                event(
                    "checkpoint.failed", logging.WARNING, cause=f"{type(error).__name__}: {error}"
                )


TICKER = Ticker()
