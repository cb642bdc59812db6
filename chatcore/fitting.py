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

import math
from dataclasses import dataclass, replace

import duckdb

from chatcore.backends.base import Backend
from chatcore.config import DEFAULT_CONTEXT_MAX
from chatcore.context import (
    SAFETY_SHARE,
    DoesNotFit,
    estimated_tokens,
    fit_history,
    reply_reserve,
    window_for,
)
from chatcore.errors import DashboardError, PromptTooLong
from chatcore.params import GenerationParams
from chatcore.storage import context_fits
from chatcore.types import ChatMessage, Metrics

# How far the model's own count may move the estimate: a wild ratio (a cached prompt counted
# short, a tokenizer gone odd) must not shrink the window to nothing.
CORRECTION_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class ContextPolicy:
    """The user's settings: the largest window to ask any model for, and what to do with turns
    that do not fit (`drop`; `summarise` is not built yet and drops too)."""

    max_tokens: int = DEFAULT_CONTEXT_MAX
    overflow: str = "drop"


@dataclass(frozen=True)
class FittedPrompt:
    """What goes to the model: the messages that fit and the parameters with the window."""

    messages: list[ChatMessage]
    params: GenerationParams  # num_ctx set to the window
    estimated_tokens: int  # the app's raw estimate of `messages`, before any correction
    window: int  # the context window the request runs in
    dropped: int  # history messages left out

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
        )


class ContextFitter:
    def __init__(self, policy: ContextPolicy | None = None) -> None:
        self.policy = policy or ContextPolicy()

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
    ) -> FittedPrompt:
        """The newest turns that fit in `limit` with room for the reply; PromptTooLong when even
        the system prompt and the newest message alone do not."""
        correction = correction_for(cur, conversation_id, model)

        def measure(messages: list[ChatMessage]) -> int:
            return math.ceil(estimated_tokens(messages) * correction * SAFETY_SHARE)

        reserve = reply_reserve(params.max_tokens, limit)
        try:
            fitted = fit_history(history, measure, limit - reserve)
        except DoesNotFit as error:
            raise PromptTooLong(
                f"The message is too long for {model}'s context window: with the system prompt "
                f"it takes about {error.tokens:,} tokens, and {error.budget:,} fit (the window "
                f"holds {limit:,}, {reserve:,} of them kept for the reply). Shorten it, or "
                "lower max tokens."
            ) from error
        window = window_for(fitted.tokens + params.max_tokens, limit)
        return FittedPrompt(
            messages=fitted.messages,
            params=params.model_copy(update={"num_ctx": window}),
            estimated_tokens=estimated_tokens(fitted.messages),
            window=window,
            dropped=fitted.dropped,
        )


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


def with_fitting(metrics: Metrics, dropped: int, window: int | None) -> Metrics:
    """A reply's metrics with what the fitting left out added to what the backend left out
    (the embedded engine fits again with its own tokenizer), and the window it ran in."""
    if not dropped and window is None:
        return metrics
    return replace(
        metrics,
        context_dropped=metrics.context_dropped + dropped,
        num_ctx=metrics.num_ctx or window,
    )
