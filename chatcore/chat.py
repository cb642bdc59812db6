"""The one send path: store the user's turn, stream a reply from a backend, store the reply.

The Chat page, the Compare page and the REST API all send through `ChatService.send`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from chatcore.backends.base import Backend
from chatcore.backends.registry import Registry, stream_ended
from chatcore.branches import BranchService, parent_for
from chatcore.checkpoints import Checkpoints
from chatcore.errors import (
    DashboardError,
    InvalidInput,
    ModelNotFound,
)
from chatcore.fitting import ContextFitter, FittedPrompt, with_fitting
from chatcore.images import refused_for, valid_images
from chatcore.knowledge import NO_GROUNDING, Grounding, KnowledgeService
from chatcore.logs import current_request_id, event
from chatcore.opening import Opening
from chatcore.params import GenerationParams
from chatcore.relay_tails import RelayTails
from chatcore.reply_rows import RowWriter, TurnLocks
from chatcore.stats import BackgroundSummaries
from chatcore.storage import conversations as store
from chatcore.storage import images as image_store
from chatcore.storage import runs, trees
from chatcore.storage.db import Database
from chatcore.thinking import split_inline_thinking
from chatcore.types import (
    Abilities,
    ChatMessage,
    Citation,
    Image,
    Metrics,
    Piece,
    RunRecord,
    RunStatus,
    SidebarEntry,
    Thinking,
    ToolCall,
    ToolCalls,
    Waiting,
    as_stored_id,
    canonical_model,
    checked_conversation_id,
)

CHECKPOINT_SECONDS = 2.0  # a killed process loses at most this much of a streaming reply
MAX_MESSAGE_CHARS = 100_000
TITLE_CHARS = 60


@dataclass
class Reply:
    """A reply as stored: its text so far, its status and, when done, its metrics.

    Its message and run rows are written just after the user's turn commits, off the first
    token's path (chatcore/reply_rows.py): reading `message_id` or `run_id` waits for them."""

    conversation_id: str
    model: str
    backend: str
    host: str
    text: str = ""
    thinking: str = ""  # the model's reasoning, apart from the answer
    status: RunStatus = RunStatus.STREAMING  # then complete, stopped or error
    error: str | None = None
    ttft_ms: float | None = None  # to the first token of any kind, thinking or answer
    metrics: Metrics = field(default_factory=Metrics)
    request_id: str | None = None  # the log's id for this run, shown beside an error
    attempts: int = 1  # hosts tried; backend and host name the last one, which answered
    client: str | None = None  # who sent it through the proxies; None: the dashboard
    citations: list[Citation] = field(default_factory=list)  # knowledge-base passages it was given
    context_dropped: int = 0  # history messages the context fitting left out
    context_summarised: int = 0  # of those, the ones a summary note stood for
    window: int | None = None  # the context window it was sent with
    tool_calls: list[ToolCall] = field(default_factory=list)  # functions it asked to call
    rows: Future[tuple[int, int]] = field(default_factory=Future, repr=False, compare=False)
    # Set once its first piece went out (or it ended): its rows wait for that, briefly.
    shown: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def message_id(self) -> int:
        self.shown.set()  # wanted now: no reason left to wait for the first piece
        return self.rows.result()[0]

    @property
    def run_id(self) -> int:
        self.shown.set()
        return self.rows.result()[1]


class ReplyStream:
    """Iterate for the reply as it arrives: answer text as `str`, reasoning as `Thinking` (a str
    subclass: tell them apart by class); `.reply` holds the stored outcome.

    Closing the stream early (a stop button, a dropped client) stores the reply as 'stopped'.
    """

    def __init__(
        self,
        db: Database,
        opening: Opening,
        reply: Reply,
        started: float,
        stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.reply = reply
        self._stored = stored  # told once the outcome is stored (Stats counts it later)
        self.failure: DashboardError | None = None  # what ended it in error, when one did
        self.failure_cause: BaseException | None = None  # its detail, for the log only
        # Replies ahead of this one at a busy model while it waits its turn (it yields "" then).
        self.waiting_ahead: int | None = None
        self._finished = threading.Event()  # set once the outcome is stored
        self.stored_as = 0  # the database's transaction count once the outcome was stored
        self._db = db
        self._opening = opening  # the request to the model, already on its way
        self._backend = opening.backend
        self._started = started
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        if self.reply.status == RunStatus.STREAMING:  # closed before it ever started
            self.reply.shown.set()
            self._opening.cancel()  # the request already sent is closed once it opens
            self.reply.status = RunStatus.STOPPED
            self._store_outcome()
        stream_ended(self._backend)  # a stream that never ran is no longer in flight

    def first_piece_within(self, seconds: float) -> bool:
        """Whether the model's first piece (or its failure) comes within `seconds`: a page puts
        off what can wait until after the first text only when that is soon."""
        return self._opening.ready(seconds)

    def wait_finished(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the outcome to be stored; True once it is."""
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        """True once the reply's outcome (complete, stopped or error) is stored."""
        return self._finished.is_set()

    def consume(self) -> Reply:
        for _ in self._chunks:
            pass
        return self.reply

    def _generate(self) -> Iterator[str]:
        reply = self.reply
        parts: list[str] = []
        thoughts: list[str] = []
        append, think = parts.append, thoughts.append
        clock = Clock(self._started)
        failure: BaseException | None = None
        source: Iterator[Piece] | None = None
        checkpoints = Checkpoints(parts, thoughts, self._checkpoint, CHECKPOINT_SECONDS)
        try:
            source, first = self._first_piece()
            while first.__class__ is Waiting:  # queued at a busy model: hand control back
                reply.shown.set()  # its first piece is not coming soon: write its rows now
                self.waiting_ahead = first.ahead  # type: ignore[union-attr]
                yield ""
                first = next(source, None)
            self.waiting_ahead = None
            started = itertools.chain((first,), source) if first is not None else source
            for piece in split_inline_thinking(started):
                # The hot path: no clock, no I/O, as little work as can be; a clock only on the
                # first piece of each kind.
                if piece.__class__ is str:
                    if not parts:
                        clock.answer = time.perf_counter()
                        checkpoints.start()
                        append(piece)
                        yield piece
                        reply.shown.set()  # its rows are written now, not on its way
                        continue
                    append(piece)
                    yield piece
                elif piece.__class__ is Thinking:
                    if not thoughts:
                        clock.thinking = time.perf_counter()
                        checkpoints.start()
                        think(piece)
                        yield piece
                        reply.shown.set()
                        continue
                    think(piece)
                    yield piece
                elif piece.__class__ is ToolCalls:  # given back with the reply's end
                    reply.tool_calls.extend(piece)  # type: ignore[arg-type]
                else:
                    reply.metrics = piece
            reply.status = RunStatus.COMPLETE
        except GeneratorExit:
            reply.status = RunStatus.STOPPED
            raise
        except DashboardError as error:
            reply.status, reply.error, failure = RunStatus.ERROR, str(error), error
            self.failure = error
            self.failure_cause = error.__cause__
        except Exception as error:  # never lose the text because of an unexpected failure
            reply.status, reply.error = RunStatus.ERROR, UNEXPECTED
            self.failure_cause = error
        finally:
            reply.shown.set()
            checkpoints.stop()
            if source is not None:
                source.close()  # type: ignore[attr-defined]  # ends generation when stopped early
            stream_ended(self._backend, failure)
            reply.text, reply.thinking = "".join(parts), "".join(thoughts)
            reply.ttft_ms = clock.first_ms()
            reply.metrics = clock.measured(reply.metrics, len(thoughts), len(parts))
            reply.metrics = with_fitting(
                reply.metrics, reply.context_dropped, reply.window, reply.context_summarised
            )
            if reply.tool_calls:
                reply.metrics = replace(reply.metrics, tool_calls=calls_json(reply.tool_calls))
            self._store_outcome()

    def _first_piece(self) -> tuple[Iterator[Piece], Piece | None]:
        """The first piece from the opening (retried on other hosts there when one fails
        first); the host that answered, or was tried last, is the reply's."""
        try:
            opened = self._opening.result()
        finally:
            self._backend = self._opening.backend
            self.reply.backend, self.reply.host = self._backend.name, self._backend.host
            self.reply.attempts = self._opening.attempts
        return opened.source, opened.first

    def _checkpoint(self, text: str, thinking: str) -> None:
        with self._db.cursor() as cur:
            store.checkpoint_text(cur, self.reply.message_id, text, thinking)

    def _store_outcome(self) -> None:
        reply = self.reply
        if (lost := reply.rows.exception()) is not None:  # waits for the reply's rows
            self._lost_rows(lost)
            return
        with self._db.transaction() as cur:
            store.checkpoint_text(cur, reply.message_id, reply.text, reply.thinking)
            runs.finish_run(
                cur,
                run_id=reply.run_id,
                status=reply.status,
                error=reply.error,
                ttft_ms=reply.ttft_ms,
                metrics=reply.metrics,
                answered_by=(reply.backend, reply.host),
                attempts=reply.attempts,
            )
            store.touch_conversation(cur, reply.conversation_id)
            self.stored_as = self._db.transaction_number
        self._log_run()
        self._finished.set()
        self._stored()

    def _lost_rows(self, error: BaseException) -> None:
        """The reply's rows could not be written: nothing of it can be stored."""
        reply = self.reply
        reply.status = RunStatus.ERROR
        reply.error = str(error) if isinstance(error, DashboardError) else UNEXPECTED
        event(
            "run.unstored",
            logging.ERROR,
            request_id=reply.request_id,
            conversation=reply.conversation_id,
            cause=described(error),
        )
        self._finished.set()

    def _log_run(self) -> None:
        """The run's line in the log: who, where, how it ended and how long it took."""
        reply = self.reply
        metrics = reply.metrics
        event(
            "run",
            logging.WARNING if reply.status == RunStatus.ERROR else logging.INFO,
            request_id=reply.request_id,
            conversation=reply.conversation_id,
            message_id=reply.message_id,
            run_id=reply.run_id,
            model=reply.model,
            backend=reply.backend,
            host=reply.host,
            status=str(reply.status),
            ttft_ms=round(reply.ttft_ms, 1) if reply.ttft_ms is not None else None,
            total_ms=round((time.perf_counter() - self._started) * 1000, 1),
            prompt_tokens=metrics.prompt_tokens,
            completion_tokens=metrics.completion_tokens,
            reply_chars=len(reply.text),
            error=reply.error,
            cause=described(self.failure_cause),
        )
        event("run.text", logging.DEBUG, request_id=reply.request_id, reply=reply.text)


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
    def __init__(
        self,
        db: Database,
        registry: Registry,
        knowledge: KnowledgeService | None = None,
        context: ContextFitter | None = None,
        relay_tails: RelayTails | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.knowledge = knowledge
        self.context = context or ContextFitter()
        self.branches = BranchService(db)  # switch, fork and read the tree
        # the sidebar's last entries and the fingerprint of what they were folded from
        self._sidebar: tuple[tuple[object, ...], list[SidebarEntry]] | None = None
        self._rows = RowWriter(db)  # each reply's own rows, beside its first token
        self._turns = TurnLocks()  # one send at a time per conversation, until its rows are in
        self._summaries = BackgroundSummaries(db)  # Stats counts each reply in a pause
        # where each tool's conversation ended its last turn
        self._relay_tails = relay_tails or RelayTails()

    def _begin_turn(self, conversation_id: str) -> None:
        """A send's turn, from before its user's message until its reply's rows are written:
        one at a time per conversation, and no backup taken in between."""
        self._turns.acquire(conversation_id)
        self.db.turns.enter()

    def _end_turn(self, conversation_id: str) -> None:
        self.db.turns.leave()
        self._turns.release(conversation_id)

    @contextmanager
    def _turn(self, conversation_id: str) -> Iterator[None]:
        self._turns.acquire(conversation_id)
        try:
            yield
        finally:
            self._turns.release(conversation_id)

    def close(self) -> None:
        """Wait for the reply rows still being written; stop adding replies to Stats."""
        self._rows.close()
        self._summaries.close()

    def send(
        self,
        conversation_id: str | None,
        text: str,
        model: str,
        params: GenerationParams,
        client: str | None = None,
        images: Sequence[bytes] = (),
        parent_id: int | None = None,
    ) -> ReplyStream:
        """Store the user's message (with its images), then return the reply's stream.

        `client`: who sent it through the proxies (None: the dashboard's own pages and API).
        `parent_id`: the message it answers after (None: the open branch's last; TOP, 0: a new
        first message). Another branch's message makes a new branch, which becomes the open one.

        Raises InvalidInput (also for images a model can't see, or a parent_id not of this
        conversation), ModelNotFound or BackendUnavailable before anything is written.
        """
        started = time.perf_counter()
        fresh = conversation_id is None and parent_id is None  # a new chat: nothing to read
        try:
            text = valid_message(text)
            conversation_id = valid_conversation_id(conversation_id)
            if parent_id is not None:  # refused before anything is written (used in the
                with self.db.cursor() as cur:  # transaction below, checked again there)
                    parent_for(cur, conversation_id, parent_id)
            attached = valid_images(images)
            grounding = self._grounding(text, params)  # retrieval, before anything is written
            backend, model = self._resolve(model)
        except DashboardError as error:
            log_refusal("send", error, conversation_id, model)
            raise
        event("send.text", logging.DEBUG, conversation=conversation_id, message=text)
        opening: Opening | None = None
        self._begin_turn(conversation_id)  # until the reply's rows are written
        try:
            limit = self.context.limit(backend, model, params)  # asks the host: no transaction
            sees = self._sees_images(backend, model, conversation_id, attached, fresh)
            with self.db.transaction() as cur:
                exists, parent, path = self._where_it_goes(cur, conversation_id, parent_id, fresh)
                earlier = (
                    store.context_messages(cur, conversation_id, path, with_images=sees)
                    if path
                    else []
                )
                asked = store.context_message(
                    "user", text, [i.data for i in attached] if sees else None
                )
                history = grounding.apply(with_system_prompt([*earlier, asked], params))
                fitted = self.context.fit(
                    cur, conversation_id, model, history, params, limit, learned=not fresh
                )
                history, params = fitted.messages, fitted.params
                # The model is asked now, while the turn is written and committed below.
                opening = Opening(backend, model, history, params, self._another_host)
                if not exists:
                    store.create_conversation(cur, conversation_id, title_from(text))
                message_id = store.add_message(cur, conversation_id, "user", text, parent)
                self._attach(cur, message_id, attached)
        except BaseException:
            self._end_turn(conversation_id)
            abandon(opening, backend)
            raise
        # The turn is committed: the reply's own rows are written beside its first token.
        reply = self._reply_later(
            conversation_id, backend, model, params, history, client, message_id, fitted
        )
        write = self._reply_rows(reply, params, history, message_id, fitted, grounding)
        self._rows.write(
            reply.rows, write, then=lambda: self._end_turn(conversation_id), after=reply.shown
        )
        stream = ReplyStream(self.db, opening, reply, started, self._summaries.reply_stored)
        self.context.follow_up(self.db, self.registry, stream, fitted)
        return stream

    def relay(
        self,
        messages: Sequence[ChatMessage],
        model: str,
        params: GenerationParams,
        client: str,
        accepted: Callable[[], None] = lambda: None,
    ) -> ReplyStream:
        """A chat a tool sent through the proxies: the model gets `messages` as they came; the
        newest (a user's) is stored as the turn, in a conversation of `client`'s that the same
        opening message continues (an editor resending its growing chat lands in one place).

        Raises InvalidInput, ModelNotFound or BackendUnavailable before anything is written,
        and before `accepted` is called: a server may start its answer then (its headers go
        out while the turn is written).
        """
        started = time.perf_counter()
        history = valid_messages(messages)
        text = history[-1]["content"]
        conversation_id = relayed_conversation_id(client, history)
        backend, model = self._resolve(model)
        accepted()
        opening: Opening | None = None
        self._begin_turn(conversation_id)  # until the reply's rows are written
        try:
            # The model is asked first, while the turn is written and committed (its first
            # piece is taken only after the commit). With the conversation's end remembered
            # (RelayTails) that write is one insert: 0.2-1.9 ms earlier through the proxy than
            # asking after it; before, the end's lookup took turns with the request's Python.
            opening = Opening(backend, model, history, params, self._another_host)
            with self.db.transaction() as cur:
                parent = self._relay_tails.end(conversation_id, self.db.transactions)
                if parent is None:
                    parent = self._open_branch_end(cur, conversation_id, history)
                role = history[-1]["role"]  # the user's, or a tool's result
                message_id = store.add_message(cur, conversation_id, role, text, parent)
        except BaseException:
            self._end_turn(conversation_id)
            abandon(opening, backend)
            raise
        reply = self._reply_later(
            conversation_id, backend, model, params, history, client, message_id, None
        )
        rows = self._reply_rows(reply, params, history, message_id)
        rows_stored_as: list[int] = []

        def write(cur: store.duckdb.DuckDBPyConnection) -> tuple[int, int]:
            written = rows(cur)
            rows_stored_as.append(self.db.transaction_number)
            return written

        def stored() -> None:
            self._summaries.reply_stored()
            # the reply ends the open branch unless another write came between its two
            if rows_stored_as and stream.stored_as == rows_stored_as[0] + 1:
                self._relay_tails.remember(conversation_id, reply.message_id, stream.stored_as)

        self._rows.write(
            reply.rows, write, then=lambda: self._end_turn(conversation_id), after=reply.shown
        )
        stream = ReplyStream(self.db, opening, reply, started, stored)
        return stream

    @staticmethod
    def _open_branch_end(
        cur: store.duckdb.DuckDBPyConnection, conversation_id: str, history: list[ChatMessage]
    ) -> int | None:
        """The last message of the relayed conversation's open branch; the conversation is made
        when it is new (None then)."""
        exists, branch = trees.existing_open_branch(cur, conversation_id)
        if not exists:
            first = next(m["content"] for m in history if m["role"] == "user")
            store.create_conversation(cur, conversation_id, title_from(first))
        return branch[-1] if branch else None

    def regenerate(self, conversation_id: str, model: str, params: GenerationParams) -> ReplyStream:
        """Answer the open branch's last user message again: a sibling of the reply it had,
        which stays stored (switch back to it). Its images go again to a model that sees them."""
        started = time.perf_counter()
        question = self._last_question(conversation_id) if params.collections else ""
        grounding = self._grounding(question, params)
        try:
            backend, model = self._resolve(model)
        except DashboardError as error:
            log_refusal("regenerate", error, conversation_id, model)
            raise
        opening: Opening | None = None
        try:
            limit = self.context.limit(backend, model, params)
            sees = self._sees_images(backend, model, conversation_id, [])
            with self._turn(conversation_id), self.db.transaction() as cur:
                question = self._question_of_last_reply(cur, conversation_id)
                path = trees.tree_of(cur, conversation_id).path_to(question)
                history = with_system_prompt(
                    store.context_messages(cur, conversation_id, path, with_images=sees), params
                )
                history = grounding.apply(history)
                fitted = self.context.fit(cur, conversation_id, model, history, params, limit)
                history, params = fitted.messages, fitted.params
                opening = Opening(backend, model, history, params, self._another_host)
                reply = self._reply_later(
                    conversation_id, backend, model, params, history, None, question, fitted
                )
                write = self._reply_rows(reply, params, history, question, fitted, grounding)
                reply.rows.set_result(write(cur))  # no turn of the user's to commit first
        except BaseException:
            abandon(opening, backend)
            raise
        stream = ReplyStream(self.db, opening, reply, started, self._summaries.reply_stored)
        self.context.follow_up(self.db, self.registry, stream, fitted)
        return stream

    @staticmethod
    def _question_of_last_reply(cur: store.duckdb.DuckDBPyConnection, conversation_id: str) -> int:
        """The message the open branch's last reply answered; InvalidInput when it ends in none."""
        branch = trees.open_branch(cur, conversation_id)
        last = trees.message_in(cur, conversation_id, branch[-1]) if branch else None
        if last is None or last[0] != "assistant" or last[1] is None:
            raise InvalidInput("There is no reply to regenerate in this conversation.")
        return last[1]

    def _resolve(self, model: str) -> tuple[Backend, str]:
        """The backend for `model` and the one name it is stored and counted under: Ollama's
        rule for Ollama's names (no tag means `:latest`), other servers' names as they are."""
        canonical = canonical_model(model)
        try:
            backend, _ = self.registry.resolve(canonical)
        except ModelNotFound:
            if canonical == model:
                raise
            backend, _ = self.registry.resolve(model)  # an OpenAI-compatible server's own name
            return backend, model
        return backend, canonical

    def _another_host(self, model: str, tried: Collection[str]) -> Backend | None:
        """A backend on a host not yet tried that has `model`, for a retry; None if none has."""
        try:
            backend, _ = self.registry.resolve(model, exclude=tried)
        except DashboardError:
            return None
        return backend

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

    @staticmethod
    def _where_it_goes(
        cur: store.duckdb.DuckDBPyConnection,
        conversation_id: str,
        parent_id: int | None,
        fresh: bool,
    ) -> tuple[bool, int | None, list[int]]:
        """Whether the conversation exists, the message the new one follows, and the branch
        that leads to it. A new chat reads nothing; the open branch is its own path."""
        if fresh:
            return False, None, []
        if parent_id is None:
            exists, path = trees.existing_open_branch(cur, conversation_id)
            return exists, (path[-1] if path else None), path
        parent = parent_for(cur, conversation_id, parent_id)
        path = trees.tree_of(cur, conversation_id).path_to(parent) if parent else []
        return store.conversation_exists(cur, conversation_id), parent, path

    def _sees_images(
        self,
        backend: Backend,
        model: str,
        conversation_id: str,
        attached: list[Image],
        fresh: bool = False,
    ) -> bool:
        """Whether images go to the model: refused when new ones are attached and it has no
        vision; earlier turns' images are left out for a model without it (the text stays)."""
        if not attached:
            if fresh:
                return False  # a new chat has no earlier images
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
        """The open branch, each message with its siblings (chatcore/branches.py for more)."""
        with self.db.cursor() as cur:
            return trees.branch_messages(cur, as_stored_id(conversation_id))

    def last_run(self, conversation_id: str) -> RunRecord | None:
        """The run of the conversation's newest visible reply: the model and parameters to
        carry it on with. Reads one run, not the branch's messages."""
        with self.db.cursor() as cur:
            branch = trees.open_branch(cur, as_stored_id(conversation_id))
            return trees.newest_run_on(cur, branch) if branch else None

    def conversation(self, conversation_id: str) -> store.ConversationSummary | None:
        with self.db.cursor() as cur:
            return store.get_conversation(cur, as_stored_id(conversation_id))

    def recent_conversations(self, limit: int = 20) -> list[store.ConversationSummary]:
        with self.db.cursor() as cur:
            return store.recent_conversations(cur, limit)

    def recent_titles(self, limit: int = 20) -> list[tuple[str, str]]:
        """(id, title) of the newest conversations: what the sidebar lists on every rerun,
        without the counts a summary scans the messages for."""
        with self.db.cursor() as cur:
            return store.recent_titles(cur, limit)

    def sidebar_entries(self, limit: int = 20) -> list[SidebarEntry]:
        """The sidebar's newest entries, a Compare round's columns folded into one. Every page
        draws them on every run: they are folded again only when what they are folded from has
        changed (its fingerprint, a millisecond to read, against tens to plan and run the fold)."""
        with self.db.cursor() as cur:
            key = (limit, *store.sidebar_fingerprint(cur))
            kept = self._sidebar
            if kept is not None and kept[0] == key:
                return list(kept[1])
            entries = store.sidebar_entries(cur, limit)
        self._sidebar = (key, entries)
        return list(entries)

    def exists(self, conversation_id: str) -> bool:
        with self.db.cursor() as cur:
            return store.conversation_exists(cur, as_stored_id(conversation_id))

    @staticmethod
    def _reply_later(
        conversation_id: str,
        backend: Backend,
        model: str,
        params: GenerationParams,
        history: list[ChatMessage],
        client: str | None,
        question: int,
        fitted: FittedPrompt | None,
    ) -> Reply:
        """The reply to `question`, its rows not yet written (`_reply_rows` writes them)."""
        reply = Reply(
            conversation_id,
            model,
            backend.name,
            backend.host,
            request_id=current_request_id(),
            client=client,
        )
        if fitted is not None:
            reply.context_dropped, reply.window = fitted.dropped, fitted.window
            reply.context_summarised = fitted.summarised
        return reply

    @staticmethod
    def _reply_rows(
        reply: Reply,
        params: GenerationParams,
        history: list[ChatMessage],
        question: int,
        fitted: FittedPrompt | None = None,
        grounding: Grounding = NO_GROUNDING,
    ) -> Callable[[store.duckdb.DuckDBPyConnection], tuple[int, int]]:
        """What writes the reply's message (after `question`, and now the open branch's end),
        its run, its prompt's fit and its citations; gives (message id, run id)."""
        options, prompt_chars = params.recorded(), sum(len(m["content"]) for m in history)

        def write(cur: store.duckdb.DuckDBPyConnection) -> tuple[int, int]:
            conversation_id = reply.conversation_id
            message_id = store.add_message(cur, conversation_id, "assistant", "", question)
            trees.set_open_message(cur, conversation_id, message_id)
            run_id = runs.start_run(
                cur,
                conversation_id=conversation_id,
                message_id=message_id,
                model=reply.model,
                backend=reply.backend,
                host=reply.host,
                options=options,
                prompt_chars=prompt_chars,
                request_id=reply.request_id,
                client=reply.client,
            )
            if fitted is not None:
                fitted.record(cur, run_id, conversation_id, reply.model)
            reply.citations = grounding.store(cur, run_id)
            return message_id, run_id

        return write


RELAYED_ROLES = ("system", "user", "assistant", "tool")
UNEXPECTED = "Something went wrong while answering; the details are in the log."


def abandon(opening: Opening | None, backend: Backend) -> None:
    """A send that failed before its turn committed: its request to the model, if one went
    out, is closed once it opens, and the chosen backend is let go."""
    if opening is not None:
        opening.cancel()
    stream_ended(backend)


def calls_json(calls: Sequence[ToolCall]) -> str:
    """A reply's tool calls as stored with its run."""
    return json.dumps(
        [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False
    )


def described(error: BaseException | None) -> str | None:
    """What the page does not show, for the log: the exception's class and text."""
    return None if error is None else f"{type(error).__name__}: {error}"


def log_refusal(
    action: str, error: DashboardError, conversation_id: str | None, model: str
) -> None:
    """A send refused before anything was written: its line, found by the id shown with it."""
    event(
        f"{action}.refused",
        logging.WARNING,
        conversation=conversation_id,
        model=model,
        error=str(error),
        error_kind=type(error).__name__,
    )


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


def valid_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """A relayed chat: roles system, user, assistant or tool (a tool's result), text content,
    a user's message or a tool's result last (that is the turn stored). An assistant message
    may carry tool calls instead of text."""
    if not isinstance(messages, Sequence) or not messages:
        raise InvalidInput("The request has no messages: send at least one user message.")
    history: list[ChatMessage] = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content") or ""
        if role not in RELAYED_ROLES or not isinstance(content, str):
            raise InvalidInput(
                f"messages[{index}]: a message is a role (system, user, assistant or tool) "
                "and text."
            )
        history.append(ChatMessage(role=role, content=content))
        for key in ("tool_calls", "tool_call_id", "tool_name"):
            if key in message:
                history[-1][key] = message[key]  # type: ignore[literal-required]
    if history[-1]["role"] not in ("user", "tool"):
        raise InvalidInput("The last message must be the user's: there is nothing to answer.")
    if not any(m["role"] == "user" for m in history):
        raise InvalidInput("The request has no user message: send at least one.")
    if history[-1]["role"] == "user":
        valid_message(history[-1]["content"])
    return history


def relayed_conversation_id(client: str, history: Sequence[ChatMessage]) -> str:
    """The same client opening with the same system prompt and first message: one conversation."""
    system = next((m["content"] for m in history if m["role"] == "system"), "")
    first = next(m["content"] for m in history if m["role"] == "user")
    digest = hashlib.sha256("\x00".join([client, system, first]).encode()).hexdigest()[:24]
    return f"proxy-{digest}"


def valid_conversation_id(value: str | None) -> str:
    """The id normalised (see chatcore.types.conversation_id), or a new one for None."""
    if value is None:
        return new_conversation_id()
    return checked_conversation_id(value)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def with_system_prompt(history: list[ChatMessage], params: GenerationParams) -> list[ChatMessage]:
    if not params.system_prompt.strip():
        return history
    return [ChatMessage(role="system", content=params.system_prompt), *history]
