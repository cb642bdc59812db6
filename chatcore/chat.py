"""The one send path: store the user's turn, stream a reply from a backend, store the reply.

The Chat page, the Compare page and the REST API all send through `ChatService.send`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from chatcore.backends.base import Backend
from chatcore.backends.registry import Registry, stream_ended
from chatcore.errors import DashboardError, InvalidInput
from chatcore.images import refused_for, valid_images
from chatcore.params import GenerationParams
from chatcore.storage import conversations as store
from chatcore.storage import images as image_store
from chatcore.storage import runs
from chatcore.storage.db import Database
from chatcore.thinking import split_inline_thinking
from chatcore.types import Abilities, ChatMessage, Image, Metrics, RunStatus, Thinking

CHECKPOINT_SECONDS = 2.0  # a killed process loses at most this much of a streaming reply
MAX_MESSAGE_CHARS = 100_000
TITLE_CHARS = 60
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


@dataclass
class Reply:
    """A reply as stored: its text so far, its status and, when done, its metrics."""

    conversation_id: str
    message_id: int
    run_id: int
    model: str
    backend: str
    host: str
    text: str = ""
    thinking: str = ""  # the model's reasoning, apart from the answer
    status: RunStatus = RunStatus.STREAMING  # then complete, stopped or error
    error: str | None = None
    ttft_ms: float | None = None  # to the first token of any kind, thinking or answer
    metrics: Metrics = field(default_factory=Metrics)


class Checkpoints:
    """Saves a streaming reply's answer and reasoning every CHECKPOINT_SECONDS from a thread of
    its own: the token loop reads no clock, and a stream that stalls mid-reply is saved all the
    same."""

    def __init__(
        self, parts: list[str], thoughts: list[str], save: Callable[[str, str], None]
    ) -> None:
        self._parts = parts
        self._thoughts = thoughts
        self._save = save
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reply-checkpoints", daemon=True)

    def start(self) -> None:
        if self._thread.ident is None:  # the first piece of either kind starts it, once
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        saved = (0, 0)
        while not self._done.wait(CHECKPOINT_SECONDS):
            # appends from the streaming thread only ever add
            counts = (len(self._parts), len(self._thoughts))
            if counts != saved:
                self._save("".join(self._parts[: counts[0]]), "".join(self._thoughts[: counts[1]]))
                saved = counts


class ReplyStream:
    """Iterate for the reply as it arrives: answer text as `str`, reasoning as `Thinking` (a str
    subclass: tell them apart by class); `.reply` holds the stored outcome.

    Closing the stream early (a stop button, a dropped client) stores the reply as 'stopped'.
    """

    def __init__(
        self,
        db: Database,
        backend: Backend,
        history: list[ChatMessage],
        params: GenerationParams,
        reply: Reply,
        started: float,
    ) -> None:
        self.reply = reply
        self._db = db
        self._backend = backend
        self._started = started
        self._chunks = self._generate(backend, history, params)

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        if self.reply.status == RunStatus.STREAMING:  # closed before it ever started
            self.reply.status = RunStatus.STOPPED
            self._store_outcome()
        stream_ended(self._backend)  # a stream that never ran is no longer in flight

    def consume(self) -> Reply:
        for _ in self._chunks:
            pass
        return self.reply

    def _generate(
        self, backend: Backend, history: list[ChatMessage], params: GenerationParams
    ) -> Iterator[str]:
        reply = self.reply
        parts: list[str] = []
        thoughts: list[str] = []
        append, think = parts.append, thoughts.append
        clock = Clock(self._started)
        failure: BaseException | None = None
        source = backend.stream_chat(reply.model, history, params)
        checkpoints = Checkpoints(parts, thoughts, self._checkpoint)
        try:
            for piece in split_inline_thinking(source):
                # The hot path: no clock, no I/O, as little work as can be; a clock only on the
                # first piece of each kind.
                if piece.__class__ is str:
                    if not parts:
                        clock.answer = time.perf_counter()
                        checkpoints.start()
                    append(piece)
                    yield piece
                elif piece.__class__ is Thinking:
                    if not thoughts:
                        clock.thinking = time.perf_counter()
                        checkpoints.start()
                    think(piece)
                    yield piece
                else:
                    reply.metrics = piece
            reply.status = RunStatus.COMPLETE
        except GeneratorExit:
            reply.status = RunStatus.STOPPED
            raise
        except DashboardError as error:
            reply.status, reply.error, failure = RunStatus.ERROR, str(error), error
        except Exception as error:  # never lose the text because of an unexpected failure
            reply.status, reply.error = RunStatus.ERROR, f"Unexpected error: {error!r}"
        finally:
            checkpoints.stop()
            source.close()  # ends generation on the backend when we stop early
            stream_ended(backend, failure)
            reply.text, reply.thinking = "".join(parts), "".join(thoughts)
            reply.ttft_ms = clock.first_ms()
            reply.metrics = clock.measured(reply.metrics, len(thoughts), len(parts))
            self._store_outcome()

    def _checkpoint(self, text: str, thinking: str) -> None:
        with self._db.cursor() as cur:
            store.checkpoint_text(cur, self.reply.message_id, text, thinking)

    def _store_outcome(self) -> None:
        reply = self.reply
        with self._db.transaction() as cur:
            store.checkpoint_text(cur, reply.message_id, reply.text, reply.thinking)
            runs.finish_run(
                cur,
                run_id=reply.run_id,
                status=reply.status,
                error=reply.error,
                ttft_ms=reply.ttft_ms,
                metrics=reply.metrics,
            )
            store.touch_conversation(cur, reply.conversation_id)


@dataclass
class Clock:
    """When a reply's first pieces arrived (perf_counter seconds), and the figures they give."""

    started: float
    thinking: float | None = None  # the first reasoning piece
    answer: float | None = None  # the first answer piece

    def first_ms(self) -> float | None:
        firsts = [t for t in (self.thinking, self.answer) if t is not None]
        return (min(firsts) - self.started) * 1000 if firsts else None

    def measured(self, metrics: Metrics, thinking_pieces: int, answer_pieces: int) -> Metrics:
        """The backend's metrics with the app's own: time to the answer, time spent thinking,
        and the completion tokens split into thinking (the streamed pieces) and answer."""
        ended = time.perf_counter()
        thinking_ms = None
        if self.thinking is not None:
            thinking_ms = ((self.answer or ended) - self.thinking) * 1000
        completion = metrics.completion_tokens
        answer_tokens = (
            max(0, completion - thinking_pieces) if completion is not None else answer_pieces
        )
        return replace(
            metrics,
            answer_ms=None if self.answer is None else (self.answer - self.started) * 1000,
            thinking_ms=thinking_ms,
            thinking_tokens=thinking_pieces,
            answer_tokens=answer_tokens,
        )


class ChatService:
    def __init__(self, db: Database, registry: Registry) -> None:
        self.db = db
        self.registry = registry

    def send(
        self,
        conversation_id: str | None,
        text: str,
        model: str,
        params: GenerationParams,
        images: Sequence[bytes] = (),
    ) -> ReplyStream:
        """Store the user's message (with its images), then return the reply's stream.

        Raises InvalidInput (also for images a model can't see), ModelNotFound or
        BackendUnavailable before anything is written.
        """
        started = time.perf_counter()
        text = valid_message(text)
        conversation_id = valid_conversation_id(conversation_id)
        attached = valid_images(images)
        backend, _ = self.registry.resolve(model)
        try:
            sees = self._sees_images(backend, model, conversation_id, attached)
            with self.db.transaction() as cur:
                if not store.conversation_exists(cur, conversation_id):
                    store.create_conversation(cur, conversation_id, title_from(text))
                message_id = store.add_message(cur, conversation_id, "user", text)
                self._attach(cur, message_id, attached)
                history = with_system_prompt(
                    store.context_messages(cur, conversation_id, with_images=sees), params
                )
                reply = self._start_reply(cur, conversation_id, backend, model, params, history)
        except BaseException:
            stream_ended(backend)
            raise
        return ReplyStream(self.db, backend, history, params, reply, started)

    def regenerate(self, conversation_id: str, model: str, params: GenerationParams) -> ReplyStream:
        """Answer the last user message again; the previous reply stays stored, hidden. Its
        images go again to a model that can see them."""
        started = time.perf_counter()
        backend, _ = self.registry.resolve(model)
        try:
            sees = self._sees_images(backend, model, conversation_id, [])
            with self.db.transaction() as cur:
                if not store.supersede_last_reply(cur, conversation_id):
                    raise InvalidInput("There is no reply to regenerate in this conversation.")
                history = with_system_prompt(
                    store.context_messages(cur, conversation_id, with_images=sees), params
                )
                reply = self._start_reply(cur, conversation_id, backend, model, params, history)
        except BaseException:
            stream_ended(backend)
            raise
        return ReplyStream(self.db, backend, history, params, reply, started)

    def abilities(self, model: str) -> Abilities:
        """What `model` can do (vision, thinking and its levels), as its server says."""
        backend, _ = self.registry.resolve(model)
        try:
            return backend_abilities(backend, model)
        finally:
            stream_ended(backend)

    def images(self, hashes: Sequence[str]) -> dict[str, Image]:
        """Stored images by hash (a message's `images`), to show them."""
        with self.db.cursor() as cur:
            return image_store.load_images(cur, hashes)

    def _sees_images(
        self, backend: Backend, model: str, conversation_id: str, attached: list[Image]
    ) -> bool:
        """Whether images go to the model: refused when new ones are attached and it has no
        vision; earlier turns' images are left out for a model without it (the text stays)."""
        if not attached:
            with self.db.cursor() as cur:
                if not store.has_images(cur, conversation_id):
                    return False  # the common case: no question to the server
        vision = backend_abilities(backend, model).vision
        if attached and not vision:
            raise refused_for(model)
        return vision

    @staticmethod
    def _attach(cur: store.duckdb.DuckDBPyConnection, message_id: int, images: list[Image]) -> None:
        if images:
            image_store.save_images(cur, images)
            image_store.attach_images(cur, message_id, [image.sha256 for image in images])

    def messages(self, conversation_id: str) -> list[store.StoredMessage]:
        with self.db.cursor() as cur:
            return store.conversation_messages(cur, conversation_id)

    def conversation(self, conversation_id: str) -> store.ConversationSummary | None:
        with self.db.cursor() as cur:
            return store.get_conversation(cur, conversation_id)

    def recent_conversations(self, limit: int = 20) -> list[store.ConversationSummary]:
        with self.db.cursor() as cur:
            return store.recent_conversations(cur, limit)

    def recent_titles(self, limit: int = 20) -> list[tuple[str, str]]:
        """(id, title) of the newest conversations: what the sidebar lists on every rerun,
        without the counts a summary scans the messages for."""
        with self.db.cursor() as cur:
            return store.recent_titles(cur, limit)

    def exists(self, conversation_id: str) -> bool:
        with self.db.cursor() as cur:
            return store.conversation_exists(cur, conversation_id)

    @staticmethod
    def _start_reply(
        cur: store.duckdb.DuckDBPyConnection,
        conversation_id: str,
        backend: Backend,
        model: str,
        params: GenerationParams,
        history: list[ChatMessage],
    ) -> Reply:
        message_id = store.add_message(cur, conversation_id, "assistant", "")
        run_id = runs.start_run(
            cur,
            conversation_id=conversation_id,
            message_id=message_id,
            model=model,
            backend=backend.name,
            host=backend.host,
            options=params.recorded(),
            prompt_chars=sum(len(m["content"]) for m in history),
        )
        return Reply(conversation_id, message_id, run_id, model, backend.name, backend.host)


def backend_abilities(backend: Backend, model: str) -> Abilities:
    """A backend without an `abilities` method (a test double) only completes text."""
    ask = getattr(backend, "abilities", None)
    return ask(model) if ask is not None else Abilities(capabilities=("completion",))


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def valid_message(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("The message is empty: type something to send.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            f"The message is too long ({len(text):,} characters; at most {MAX_MESSAGE_CHARS:,})."
        )
    return text


def valid_conversation_id(conversation_id: str | None) -> str:
    if conversation_id is None:
        return new_conversation_id()
    if not CONVERSATION_ID.match(conversation_id):
        raise InvalidInput(
            "A conversation id is 1 to 100 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit."
        )
    return conversation_id


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def with_system_prompt(history: list[ChatMessage], params: GenerationParams) -> list[ChatMessage]:
    if not params.system_prompt.strip():
        return history
    return [ChatMessage(role="system", content=params.system_prompt), *history]
