"""A reply's stream opened on a thread of its own, so the request to the model overlaps the
commit of the user's turn instead of waiting for it.

The send path starts an `Opening` inside its transaction and hands it to the ReplyStream only
after the commit: the stream takes the first piece from it, so nothing of a reply is shown or
stored before the user's turn is (architecture rule 4). When the commit fails, `cancel` closes
the request as soon as it has opened, and no piece of it goes anywhere.

Retry and failover live here too: a stream that fails before its first piece is opened again
on another host that has the model (up to MAX_ATTEMPTS). After a first piece there is no retry.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from chatcore.backends.base import Backend
from chatcore.backends.registry import stream_ended
from chatcore.errors import BackendFailed, BackendUnavailable, Busy, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.types import ChatMessage, Piece

MAX_ATTEMPTS = 3  # hosts tried for one reply before its failure is stored
RETRY_BACKOFF_SECONDS = (0.0, 0.05)  # the pause before the 2nd, 3rd attempt (a refused
# connection fails at once, so the first retry need not wait; a flapping host gets a breath)
# Failures before the first piece that another host may not share: it is down, busy, failing,
# or lost the model. Bad input (InvalidInput, PromptTooLong) would fail everywhere alike.
RETRYABLE = (BackendUnavailable, BackendFailed, Busy, ModelNotFound)
# Finds another backend for a model, not one of the hosts given; None when there is none.
Reroute = Callable[[str, Collection[str]], Backend | None]
# Threads kept for openings: starting one per reply cost 0.5-1 ms of the first token. Each
# opening holds its thread only until its first piece (or its last retry) is in.
OPENERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="reply-opening")


@dataclass
class Opened:
    """A stream that has produced its first piece (None: it ended without any)."""

    source: Iterator[Piece]
    first: Piece | None


class Opening:
    """Opens `backend`'s stream for `model` and waits for its first piece, on its own thread.

    `backend` and `attempts` name the host tried last (the one that answered, once `result`
    returned); read them after `result`, whichever way it ended."""

    def __init__(
        self,
        backend: Backend,
        model: str,
        history: Sequence[ChatMessage],
        params: GenerationParams,
        reroute: Reroute | None = None,
    ) -> None:
        self.backend = backend
        self.attempts = 1
        self._model = model
        self._history = list(history)
        self._params = params
        self._reroute = reroute
        self._future: Future[Opened] = Future()
        self._lock = threading.Lock()
        self._taken = False  # the ReplyStream owns the source from then on
        self._cancelled = False
        context = contextvars.copy_context()  # the request id travels into the log lines
        OPENERS.submit(context.run, self._open)

    def result(self) -> Opened:
        """The opened stream, once its first piece is in; raises what made the last host fail."""
        with self._lock:
            self._taken = True
        return self._future.result()

    def ready(self, timeout: float) -> bool:
        """Whether the first piece (or the failure that ends the reply) is in within `timeout`
        seconds; takes nothing."""
        wait([self._future], timeout=timeout)
        return self._future.done()

    def cancel(self) -> None:
        """No reply after all (its turn did not commit, or it was closed before it ran): close
        the stream as soon as it has opened. A no-op once `result` was taken."""
        with self._lock:
            if self._taken or self._cancelled:
                return
            self._cancelled = True
        self._future.add_done_callback(self._close_unused)

    def _close_unused(self, future: Future[Opened]) -> None:
        error = future.exception()
        if error is None:
            future.result().source.close()  # type: ignore[attr-defined]  # ends generation
        stream_ended(self.backend, error)

    def _open(self) -> None:
        try:
            self._future.set_result(self._first_piece())
        except BaseException as error:  # handed to whoever takes the result
            self._future.set_exception(error)

    def _first_piece(self) -> Opened:
        tried: list[str] = []
        while True:
            source = self.backend.stream_chat(self._model, self._history, self._params)
            try:
                return Opened(source, next(source, None))
            except RETRYABLE as error:
                source.close()  # type: ignore[attr-defined]
                tried.append(self.backend.host)
                following = self._next_backend(tried, error)
                if following is None:
                    raise
            pause = RETRY_BACKOFF_SECONDS[min(len(tried), len(RETRY_BACKOFF_SECONDS)) - 1]
            if pause:
                time.sleep(pause)
            self.backend, self.attempts = following, len(tried) + 1

    def _next_backend(self, tried: list[str], error: BaseException) -> Backend | None:
        """The failed host is let go (and marked down when unreachable); another, if any."""
        stream_ended(self.backend, error)
        if self._reroute is None or self._cancelled or len(tried) >= MAX_ATTEMPTS:
            return None
        return self._reroute(self._model, tried)
