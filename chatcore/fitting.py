"""Context that fits: every reply's prompt is sized before it is sent, for every backend.

The window a request may use is the smallest of the model's trained context length (Ollama's
/api/show), the user's cap (CONTEXT_MAX, or a preset's context size) and what the backend runs
in. The prompt is estimated in tokens (chatcore.context), corrected by how the model counted the
conversation's earlier prompts (their prompt_eval_count). When it does not fit, the oldest turns
are left out (the system prompt always stays) and the reply's metrics say how many. Ollama is
then asked for a window (`num_ctx`) just large enough for the prompt and the reply budget,
instead of running in its default window and dropping the oldest tokens without a word.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import duckdb

from chatcore.backends.base import Backend
from chatcore.backends.registry import Registry, stream_ended
from chatcore.config import DEFAULT_CONTEXT_MAX
from chatcore.context import (
    SAFETY_SHARE,
    DoesNotFit,
    estimated_text_tokens,
    estimated_tokens,
    fit_history,
    leading_system_messages,
    reply_reserve,
    window_for,
)
from chatcore.errors import DashboardError, PromptTooLong
from chatcore.logs import event
from chatcore.params import GenerationParams
from chatcore.storage import context_fits
from chatcore.storage.db import Database
from chatcore.types import ChatMessage, Metrics

# How far the model's own count may move the estimate: a wild ratio (a cached prompt counted
# short, a tokenizer gone odd) must not shrink the window to nothing.
CORRECTION_RANGE = (0.25, 4.0)
SUMMARY_TOKENS = 300  # the longest summary note asked for
SUMMARY_WAIT_SECONDS = 3600.0  # a reply streaming longer than this gets no summary after it
SUMMARY_INSTRUCTION = (
    "You keep notes of a conversation that has grown too long to send whole. Write a short "
    "summary of the conversation below (and of the summary so far, if there is one): the facts, "
    "names, numbers, decisions and open questions a reader needs to continue it. Plain sentences, "
    "at most 150 words, in the conversation's language. Write only the summary."
)
NOTE_HEADING = "Summary of the earlier conversation, left out to fit the context window:"


@dataclass(frozen=True)
class ContextPolicy:
    """The user's settings: the largest window to ask any model for, and what to do with turns
    that do not fit: `drop` them, or `summarise` them with the same model into a note that is
    kept (context_summaries) and sent after the system prompt in their place."""

    max_tokens: int = DEFAULT_CONTEXT_MAX
    overflow: str = "drop"


@dataclass(frozen=True)
class FittedPrompt:
    """What goes to the model: the messages that fit and the parameters with the window."""

    messages: list[ChatMessage]
    params: GenerationParams  # num_ctx set to the window
    estimated_tokens: int  # the app's raw estimate of `messages`, before any correction
    window: int  # the context window the request runs in
    dropped: int  # history messages not sent as they are (summarised ones included)
    summarised: int = 0  # of those, the ones a summary note stands for
    summary_job: SummaryJob | None = None  # a wider summary to write once the reply is done

    def record(
        self, cur: duckdb.DuckDBPyConnection, run_id: int, conversation_id: str, model: str
    ) -> None:
        context_fits.record_fit(
            cur,
            run_id=run_id,
            conversation_id=conversation_id,
            model=model,
            estimated_tokens=self.estimated_tokens,
            window_tokens=self.window,
            dropped=self.dropped,
            summarised=self.summarised,
        )


class ContextFitter:
    def __init__(self, policy: ContextPolicy | None = None) -> None:
        self.policy = policy or ContextPolicy()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def limit(self, backend: Backend, model: str, params: GenerationParams) -> int:
        """The largest window this request may use. Asks the backend (a cached /api/show), so
        call it before opening a transaction."""
        caps = [self.policy.max_tokens, params.context_size, trained_context(backend, model)]
        return min(cap for cap in caps if cap)

    def fit(
        self,
        cur: duckdb.DuckDBPyConnection,
        conversation_id: str,
        model: str,
        history: list[ChatMessage],
        params: GenerationParams,
        limit: int,
        learned: bool = True,
    ) -> FittedPrompt:
        """The newest turns that fit in `limit` with room for the reply; PromptTooLong when even
        the system prompt and the newest message alone do not. `learned=False` (a new chat, no
        earlier replies to learn the estimate's correction from) skips that query."""
        correction = correction_for(cur, conversation_id, model) if learned else 1.0

        sizes = {id(m): estimated_tokens([m]) for m in history}  # each message measured once

        def measure(messages: Sequence[ChatMessage]) -> int:
            size = sum(sizes.get(id(m)) or estimated_tokens([m]) for m in messages)
            return math.ceil(size * correction * SAFETY_SHARE)

        reserve = reply_reserve(params.max_tokens, limit)
        budget = limit - reserve
        system = leading_system_messages(history)
        dialogue = history[len(system) :]
        summarising = self.policy.overflow == "summarise"
        covered, summary = (
            usable_summary(cur, conversation_id, dialogue) if summarising else (0, "")
        )
        candidate = [*system, summary_note(summary), *dialogue[covered:]] if covered else history
        try:
            fitted = fit_history(candidate, measure, budget)
        except DoesNotFit as error:
            raise PromptTooLong(
                f"The message is too long for {model}'s context window: with the system prompt "
                f"it takes about {error.tokens:,} tokens, and {error.budget:,} fit (the window "
                f"holds {limit:,}, {reserve:,} of them kept for the reply). Shorten it, or "
                "lower max tokens."
            ) from error
        window = window_for(fitted.tokens + params.max_tokens, limit)
        job = None
        if summarising and fitted.dropped:
            # Summarise enough that the rest fits in half the budget: turns to come fit too,
            # without a new summary each time.
            more = widest_drop(candidate, measure, budget // 2, fitted.dropped)
            through = covered + more
            job = SummaryJob(
                conversation_id=conversation_id,
                model=model,
                previous=summary,
                messages=dialogue[covered:through],
                covered=through,
                covered_hash=prefix_hash(dialogue[:through]),
                window=window,
            )
        return FittedPrompt(
            messages=fitted.messages,
            params=params.model_copy(update={"num_ctx": window}),
            estimated_tokens=estimated_tokens(fitted.messages),
            window=window,
            dropped=covered + fitted.dropped,
            summarised=covered,
            summary_job=job,
        )

    # --- summarising what no longer fits (CONTEXT_OVERFLOW=summarise) ---

    def follow_up(
        self, db: Database, registry: Registry, stream: Finishing, fitted: FittedPrompt
    ) -> None:
        """Once the reply is stored, write the wider summary the fitting asked for, in the
        background: the next turns send it in place of the turns it covers."""
        job = fitted.summary_job
        if job is None:
            return
        worker = threading.Thread(
            target=self._summarise_after,
            args=(db, registry, stream, job),
            name="context-summary",
            daemon=True,
        )
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
        worker.start()

    def wait_for_summaries(self, timeout: float = 30.0) -> None:
        """Block until the summaries being written are stored (tests, shutdown)."""
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout)

    def _summarise_after(
        self, db: Database, registry: Registry, stream: Finishing, job: SummaryJob
    ) -> None:
        if not stream.wait_finished(SUMMARY_WAIT_SECONDS):
            return
        try:
            backend, _ = registry.resolve(job.model)
            try:
                text = summary_text(backend, job)
            finally:
                stream_ended(backend)
            if not text:
                return
            with db.transaction() as cur:
                context_fits.save_summary(
                    cur,
                    conversation_id=job.conversation_id,
                    covered=job.covered,
                    covered_hash=job.covered_hash,
                    model=job.model,
                    summary=text,
                )
        except Exception as error:  # a summary is a nicety: the turns are dropped instead
            event(
                "context.summary_failed",
                logging.WARNING,
                conversation=job.conversation_id,
                model=job.model,
                cause=f"{type(error).__name__}: {error}",
            )


class Finishing(Protocol):
    def wait_finished(self, timeout: float) -> bool: ...


@dataclass(frozen=True)
class SummaryJob:
    """A summary to write: the summary so far plus the messages it now takes in."""

    conversation_id: str
    model: str
    previous: str
    messages: list[ChatMessage] = field(default_factory=list)
    covered: int = 0  # context messages the new summary stands for, from the first
    covered_hash: str = ""
    window: int = SUMMARY_TOKENS * 4


def summary_text(backend: Backend, job: SummaryJob) -> str:
    """The model's summary, its answer only (reasoning left out), trimmed."""
    room = max(200, job.window - SUMMARY_TOKENS - estimated_text_tokens(job.previous) - 400)
    transcript = "\n\n".join(f"{m['role']}: {m['content']}" for m in job.messages)
    tokens = estimated_text_tokens(transcript)
    if tokens > room:  # its newest part, cut at the same characters-per-token rate
        transcript = transcript[-int(len(transcript) * room / tokens) :]
    asked = f"Summary so far:\n{job.previous}\n\n" if job.previous else ""
    messages = [
        ChatMessage(role="system", content=SUMMARY_INSTRUCTION),
        ChatMessage(role="user", content=f"{asked}Conversation:\n{transcript}"),
    ]
    params = GenerationParams(temperature=0.2, max_tokens=SUMMARY_TOKENS, num_ctx=job.window)
    pieces = backend.stream_chat(job.model, messages, params)
    try:
        return "".join(p for p in pieces if p.__class__ is str).strip()
    finally:
        pieces.close()  # type: ignore[attr-defined]


def summary_note(summary: str) -> ChatMessage:
    return ChatMessage(role="system", content=f"{NOTE_HEADING}\n{summary}")


def usable_summary(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, dialogue: Sequence[ChatMessage]
) -> tuple[int, str]:
    """(messages covered, summary) of the widest stored summary whose messages are still the
    dialogue's first ones (an edit or another branch changes them); (0, "") when none is."""
    for covered, digest, summary in context_fits.summaries(cur, conversation_id):
        if covered < len(dialogue) and prefix_hash(dialogue[:covered]) == digest:
            return covered, summary
    return 0, ""


def prefix_hash(messages: Sequence[ChatMessage]) -> str:
    text = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def widest_drop(candidate: list[ChatMessage], measure: object, budget: int, at_least: int) -> int:
    """How many dialogue messages to leave out for the rest to fit in `budget`."""
    try:
        return max(at_least, fit_history(candidate, measure, budget).dropped)  # type: ignore[arg-type]
    except DoesNotFit:
        return at_least


def trained_context(backend: Backend, model: str) -> int | None:
    """The model's context length as its backend reports it; None when it can't say (an
    OpenAI-compatible server, a test double, a host that did not answer /api/show)."""
    ask = getattr(backend, "context_length", None)
    if ask is None:
        return None
    try:
        length = ask(model)
    except DashboardError:
        return None  # the send itself will say what is wrong with the host
    return length if isinstance(length, int) and length > 0 else None


def correction_for(cur: duckdb.DuckDBPyConnection, conversation_id: str, model: str) -> float:
    """Tokens the model counted per token the app estimated, over the conversation's earlier
    fitted replies by this model (1.0 before the first): a Chinese conversation and an English
    one each learn their own."""
    sums = context_fits.counted_and_estimated(cur, conversation_id, model)
    if sums is None:
        return 1.0
    counted, estimated = sums
    low, high = CORRECTION_RANGE
    return min(high, max(low, counted / estimated))


def with_fitting(
    metrics: Metrics, dropped: int, window: int | None, summarised: int = 0
) -> Metrics:
    """A reply's metrics with what the fitting left out added to what the backend left out
    (the embedded engine fits again with its own tokenizer), of which `summarised` a summary
    note stood for, and the window it ran in."""
    if not dropped and window is None:
        return metrics
    return replace(
        metrics,
        context_dropped=metrics.context_dropped + dropped,
        context_summarised=metrics.context_summarised + summarised,
        num_ctx=metrics.num_ctx or window,
    )
