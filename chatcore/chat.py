"""The one send path: store the user's turn, stream a reply from a backend, store the reply.

The Chat page, the Compare page and the REST API all send through `ChatService.send`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chatcore.backends.base import Backend
from chatcore.backends.registry import Registry, stream_ended
from chatcore.errors import DashboardError, InvalidInput
from chatcore.knowledge import NO_GROUNDING, Grounding, KnowledgeService
from chatcore.params import GenerationParams
from chatcore.storage import conversations as store
from chatcore.storage import runs
from chatcore.storage.db import Database
from chatcore.types import ChatMessage, Citation, Metrics, RunStatus

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
    status: RunStatus = RunStatus.STREAMING  # then complete, stopped or error
    error: str | None = None
    ttft_ms: float | None = None
    metrics: Metrics = field(default_factory=Metrics)
    citations: list[Citation] = field(default_factory=list)  # knowledge-base passages it was given


class Checkpoints:
    """Saves a streaming reply's text every CHECKPOINT_SECONDS from a thread of its own: the
    token loop reads no clock, and a stream that stalls mid-reply is saved all the same."""

    def __init__(self, parts: list[str], save: Callable[[str], None]) -> None:
        self._parts = parts
        self._save = save
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reply-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        saved = 0
        while not self._done.wait(CHECKPOINT_SECONDS):
            count = len(self._parts)  # appends from the streaming thread only ever add
            if count != saved:
                self._save("".join(self._parts[:count]))
                saved = count


class ReplyStream:
    """Iterate for the reply's text as it arrives; `.reply` holds the stored outcome.

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
        append = parts.append
        failure: BaseException | None = None
        source = backend.stream_chat(reply.model, history, params)
        checkpoints = Checkpoints(parts, self._checkpoint)
        try:
            for piece in source:  # the hot path: no clock, no I/O, as little work as can be
                if piece.__class__ is str:
                    if not parts:
                        reply.ttft_ms = (time.perf_counter() - self._started) * 1000
                        checkpoints.start()
                    append(piece)
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
            reply.text = "".join(parts)
            self._store_outcome()

    def _checkpoint(self, text: str) -> None:
        with self._db.cursor() as cur:
            store.checkpoint_text(cur, self.reply.message_id, text)

    def _store_outcome(self) -> None:
        reply = self.reply
        with self._db.transaction() as cur:
            store.checkpoint_text(cur, reply.message_id, reply.text)
            runs.finish_run(
                cur,
                run_id=reply.run_id,
                status=reply.status,
                error=reply.error,
                ttft_ms=reply.ttft_ms,
                metrics=reply.metrics,
            )
            store.touch_conversation(cur, reply.conversation_id)


class ChatService:
    def __init__(
        self, db: Database, registry: Registry, knowledge: KnowledgeService | None = None
    ) -> None:
        self.db = db
        self.registry = registry
        self.knowledge = knowledge

    def send(
        self,
        conversation_id: str | None,
        text: str,
        model: str,
        params: GenerationParams,
    ) -> ReplyStream:
        """Store the user's message, then return the reply's stream.

        Raises InvalidInput, ModelNotFound or BackendUnavailable before anything is written.
        """
        started = time.perf_counter()
        text = valid_message(text)
        conversation_id = valid_conversation_id(conversation_id)
        grounding = self._grounding(text, params)  # retrieval, before anything is written
        backend, _ = self.registry.resolve(model)
        try:
            with self.db.transaction() as cur:
                if not store.conversation_exists(cur, conversation_id):
                    store.create_conversation(cur, conversation_id, title_from(text))
                store.add_message(cur, conversation_id, "user", text)
                history = with_system_prompt(store.context_messages(cur, conversation_id), params)
                history = grounding.apply(history)
                reply = self._start_reply(cur, conversation_id, backend, model, params, history)
                reply.citations = grounding.store(cur, reply.run_id)
        except BaseException:
            stream_ended(backend)
            raise
        return ReplyStream(self.db, backend, history, params, reply, started)

    def regenerate(self, conversation_id: str, model: str, params: GenerationParams) -> ReplyStream:
        """Answer the last user message again; the previous reply stays stored, hidden."""
        started = time.perf_counter()
        question = self._last_question(conversation_id) if params.collections else ""
        grounding = self._grounding(question, params)
        backend, _ = self.registry.resolve(model)
        try:
            with self.db.transaction() as cur:
                if not store.supersede_last_reply(cur, conversation_id):
                    raise InvalidInput("There is no reply to regenerate in this conversation.")
                history = with_system_prompt(store.context_messages(cur, conversation_id), params)
                history = grounding.apply(history)
                reply = self._start_reply(cur, conversation_id, backend, model, params, history)
                reply.citations = grounding.store(cur, reply.run_id)
        except BaseException:
            stream_ended(backend)
            raise
        return ReplyStream(self.db, backend, history, params, reply, started)

    def _grounding(self, text: str, params: GenerationParams) -> Grounding:
        """The knowledge-base passages for a message sent with collections chosen."""
        if not params.collections:
            return NO_GROUNDING
        if self.knowledge is None:
            raise InvalidInput("This chat service has no knowledge base to search.")
        return self.knowledge.ground(text, params)

    def _last_question(self, conversation_id: str) -> str:
        asked = [m for m in self.messages(conversation_id) if m.role == "user"]
        return asked[-1].content if asked else ""

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
