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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from chatcore.chat import ReplyStream

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
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._taken = threading.Event()  # the loop wrote a token (the first one matters)
        self._finished = False
        self._worker: asyncio.Future[Any] | None = None
        self._wake = asyncio.Event()

    @classmethod
    async def opened(cls, send: Callable[[], ReplyStream], in_thread: InThread) -> PieceBatches:
        """The batches of the reply `send` starts, sent and read by one worker thread: the
        loop waits for the send (its errors are raised here, before any response), and the
        first piece is read meanwhile instead of after another hop to a thread."""
        loop = asyncio.get_running_loop()
        batches = cls(None, in_thread)
        sent: asyncio.Future[ReplyStream] = loop.create_future()

        def deliver(result: ReplyStream | BaseException) -> None:
            if sent.done():
                return
            if isinstance(result, BaseException):
                sent.set_exception(result)
            else:
                sent.set_result(result)

        def work() -> None:
            try:
                batches.stream = send()
            except BaseException as error:  # raised by the loop, in the request's handler
                loop.call_soon_threadsafe(deliver, error)
                return
            loop.call_soon_threadsafe(deliver, batches.stream)
            batches._pump(loop, batches._wake)

        batches._worker = asyncio.ensure_future(in_thread(work))
        try:
            await sent
        except asyncio.CancelledError:  # the client left before the reply began: stop it
            batches._stop.set()
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
                with self._lock:
                    batch, self._pending = self._pending, []
                    finished = self._finished
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
        self._stop.set()
        self._taken.set()  # a worker waiting on a first token nobody will write goes on
        if self._worker is not None:
            await asyncio.shield(self._worker)
        else:
            await self._in_thread(self.stream.close)

    def _pump(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        lock, stop, taken = self._lock, self._stop, self._taken
        try:
            for piece in self.stream:
                with lock:
                    self._pending.append(piece)
                    first = len(self._pending) == 1
                if first:  # the loop took everything before: wake it for this one
                    loop.call_soon_threadsafe(wake.set)
                    if piece and not taken.is_set():  # the reply's first token: hand it over
                        taken.wait(HANDOFF_SECONDS)
                if stop.is_set():
                    break
        finally:
            self.stream.close()  # in this thread: the generator is never run from two at once
            with lock:
                self._finished = True
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to wake
                loop.call_soon_threadsafe(wake.set)
