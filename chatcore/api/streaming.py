"""A reply's pieces carried from the send path's thread to the event loop in batches.

One thread hop per piece capped the REST API near 6,000 tokens/s. Here one worker thread reads
the whole reply and the event loop takes what has arrived: the first piece at once (it wakes the
loop), then whatever came during the next FLUSH_SECONDS, in one write. Closing the batches (done,
client gone, cancelled) stops the reply: the worker closes the ReplyStream in its own thread after
its current piece, so the reply is stored as stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from json.encoder import encode_basestring  # ensure_ascii=False's, in C
from typing import Any

from chatcore.chat import ReplyStream
from chatcore.types import Thinking

FLUSH_SECONDS = 0.004  # after a batch, wait this long for the next pieces to gather
# After the reply's first token the worker waits (releasing the GIL) until the loop has written
# it, at most this long: a worker reading a fast stream would otherwise hold the GIL, and the loop
# would get it back only at the interpreter's switches (5 ms each), several times over.
HANDOFF_SECONDS = 0.05
InThread = Callable[[Callable[[], Any]], Awaitable[Any]]


class PieceBatches:
    def __init__(self, stream: ReplyStream | None, in_thread: InThread) -> None:
        self.stream: ReplyStream = stream  # type: ignore[assignment]  # set by opened() if None
        self._in_thread = in_thread
        # The worker appends and the loop pops: a deque's ends are safe from two threads without
        # a lock, which cost the worker two calls a piece.
        self._pending: deque[str] = deque()
        self._signalled = False  # the loop was woken for what is pending and has not taken it
        self._stopped = False  # a plain flag, read once a piece (an Event's is_set is a call)
        self._taken = threading.Event()  # the loop wrote a token (the first one matters)
        self._finished = False
        self.failure: BaseException | None = None  # what ended it after `accepted` let go
        self._worker: asyncio.Future[Any] | None = None
        self._wake = asyncio.Event()

    @classmethod
    async def opened(cls, send: Callable[[], ReplyStream], in_thread: InThread) -> PieceBatches:
        """The batches of the reply `send` starts, sent and read by one worker thread: the
        loop waits for the send (its errors are raised here, before any response), and the
        first piece is read meanwhile instead of after another hop to a thread."""
        return await cls.accepted(lambda _accept: send(), in_thread)

    @classmethod
    async def accepted(
        cls, send: Callable[[Callable[[], None]], ReplyStream], in_thread: InThread
    ) -> PieceBatches:
        """As `opened`, but the loop goes on as soon as `send` calls the callback it is given
        (the request was found good: nothing is written yet), so the response's start overlaps
        the writing of the user's turn. What `send` raises before that is raised here; after
        it, it is the batches' `failure`, for the response to end with."""
        loop = asyncio.get_running_loop()
        batches = cls(None, in_thread)
        ready: asyncio.Future[None] = loop.create_future()
        told = False

        def deliver(error: BaseException | None) -> None:
            if ready.done():
                return
            if error is not None:
                ready.set_exception(error)
            else:
                ready.set_result(None)

        def accept() -> None:
            nonlocal told
            if not told:
                told = True
                loop.call_soon_threadsafe(deliver, None)

        def work() -> None:
            try:
                batches.stream = send(accept)
            except BaseException as error:
                if not told:  # raised by the loop, in the request's handler
                    loop.call_soon_threadsafe(deliver, error)
                    return
                batches.failure = error
                batches._finished = True
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(batches._wake.set)
                return
            accept()
            batches._pump(loop, batches._wake)

        batches._worker = asyncio.ensure_future(in_thread(work))
        try:
            await ready
        except asyncio.CancelledError:  # the client left before the reply began: stop it
            batches._stopped = True
            batches._taken.set()
            raise
        return batches

    async def __aiter__(self) -> AsyncIterator[list[str]]:
        loop = asyncio.get_running_loop()
        wake = self._wake
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._in_thread(lambda: self._pump(loop, wake)))
        try:
            while True:
                await wake.wait()
                wake.clear()
                batch, finished = self._take()
                if batch:
                    yield batch  # back here once the batch is written
                    if any(batch):  # the first token is out: the worker may go on
                        self._taken.set()
                if finished:
                    break
                await asyncio.sleep(FLUSH_SECONDS)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the reply (stored as stopped unless it ended) and wait for the worker."""
        self._stopped = True
        self._taken.set()  # a worker waiting on a first token nobody will write goes on
        if self._worker is not None:
            await asyncio.shield(self._worker)
        else:
            await self._in_thread(self.stream.close)

    def _take(self) -> tuple[list[str], bool]:
        """What has arrived, and whether the worker had finished before it was taken. The
        flag is cleared first: a piece appended after it wakes the loop again."""
        self._signalled = False
        finished = self._finished  # read before taking: a finished worker appended all
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))], finished

    def _pump(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        append, taken = self._pending.append, self._taken
        try:
            for piece in self.stream:
                append(piece)
                if not self._signalled:  # the loop took everything before: wake it for this one
                    self._signalled = True
                    loop.call_soon_threadsafe(wake.set)
                    if piece and not taken.is_set():  # the reply's first token: hand it over
                        taken.wait(HANDOFF_SECONDS)
                if self._stopped:
                    break
        finally:
            self.stream.close()  # in this thread: the generator is never run from two at once
            self._finished = True
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to wake
                loop.call_soon_threadsafe(wake.set)


def framed(batch: list[str], before: str, answer: str, reasoning: str, after: str) -> bytes:
    """Each piece of a batch in its protocol's frame: `before`, then `answer` or `reasoning` by
    its kind, its text as a JSON string, then `after`; made bytes once for the batch. Only the
    text is encoded per piece, by json's own C string encoder: `json.dumps(text,
    ensure_ascii=False)` builds an encoder a call, 1.4 µs a piece against 0.16. An empty piece
    (queued at a busy model) sends nothing."""
    return "".join(
        [
            before
            + (reasoning if piece.__class__ is Thinking else answer)
            + encode_basestring(piece)
            + after
            for piece in batch
            if piece
        ]
    ).encode()
