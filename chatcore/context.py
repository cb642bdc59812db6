"""Fitting a conversation into a model's context window: the oldest turns go first.

Leading system messages always stay, and so does the newest message. History is dropped in whole
turns (a user message with the replies after it), so what remains still starts with the user, as
chat templates expect. The caller measures prompts in its model's tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Message = TypeVar("Message", bound=Mapping[str, str])


@dataclass(frozen=True)
class Fitted(Generic[Message]):
    messages: list[Message]
    dropped: int  # history messages left out
    tokens: int  # the size of the prompt that fits


class DoesNotFit(ValueError):
    """Even the system prompt and the newest message alone are too big for the window."""

    def __init__(self, tokens: int, budget: int) -> None:
        self.tokens = tokens
        self.budget = budget
        super().__init__(f"the prompt needs {tokens} tokens; {budget} fit")


def reply_reserve(max_tokens: int, window: int) -> int:
    """Room kept for the reply: what was asked for, but never more than half the window."""
    return max(1, min(max_tokens, window // 2))


def fit_history(
    messages: Sequence[Message], measure: Callable[[Sequence[Message]], int], budget: int
) -> Fitted[Message]:
    """The longest tail of the dialogue whose prompt (per `measure`) is at most `budget` tokens.

    `measure` must not grow when messages are dropped; it is called O(log n) times.
    """
    system = leading_system_messages(messages)
    dialogue = list(messages[len(system) :])
    tokens = measure(messages)
    if tokens <= budget:
        return Fitted(list(messages), 0, tokens)
    cuts = turn_starts(dialogue)  # how many messages to drop, ascending
    low, high = 0, len(cuts) - 1
    best: tuple[int, int] | None = None
    while low <= high:  # the fewest dropped messages that fit
        middle = (low + high) // 2
        size = measure([*system, *dialogue[cuts[middle] :]])
        if size <= budget:
            best, high = (cuts[middle], size), middle - 1
        else:
            low = middle + 1
    if best is None:
        raise DoesNotFit(measure([*system, *dialogue[cuts[-1] :]]), budget)
    dropped, size = best
    return Fitted([*system, *dialogue[dropped:]], dropped, size)


def leading_system_messages(messages: Sequence[Message]) -> list[Message]:
    count = 0
    while count < len(messages) and messages[count]["role"] == "system":
        count += 1
    return list(messages[:count])


def turn_starts(dialogue: Sequence[Message]) -> list[int]:
    """Where the remaining dialogue may begin: at a user message after the first, or at the last."""
    last = len(dialogue) - 1
    starts = [i for i in range(1, last) if dialogue[i]["role"] == "user"]
    return [*starts, last] if last > 0 else [0]


# --- estimating a prompt's tokens before it is sent ---

# Scripts written without spaces take about one token per character in the usual tokenizers
# (Chinese, Japanese kana, Korean Hangul, full-width forms); other text about four characters
# per token.
CJK_RUNS = re.compile(  # runs of them: one match per run, not per character, is ten times faster
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+"
)
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # the chat template's role markers around each message
IMAGE_TOKENS = 768  # what one image costs a vision model's prompt, roughly


def estimated_text_tokens(text: str) -> int:
    """About one token per CJK character, one per four characters of anything else."""
    wide = 0 if text.isascii() else sum(map(len, CJK_RUNS.findall(text)))
    return wide + -(-(len(text) - wide) // CHARS_PER_TOKEN)


def estimated_tokens(messages: Sequence[Mapping[str, object]]) -> int:
    """A prompt's size in tokens, before any tokenizer has seen it."""
    total = 0
    for message in messages:
        content = message.get("content")
        total += MESSAGE_OVERHEAD_TOKENS + estimated_text_tokens(
            content if isinstance(content, str) else ""
        )
        images = message.get("images")
        total += IMAGE_TOKENS * len(images) if isinstance(images, list) else 0
    return total


# --- choosing the window a request runs in ---

SMALLEST_WINDOW = 2048
SAFETY_SHARE = 1.1  # an estimate is kept this much above what it predicts: better a little room


def window_for(needed: int, limit: int) -> int:
    """The window for a prompt plus reply of `needed` tokens: the next power of two from
    SMALLEST_WINDOW up, at most `limit`. Steps rather than the exact size, because Ollama
    reloads a model whenever the window it runs in changes."""
    window = SMALLEST_WINDOW
    while window < needed:
        window *= 2
    return max(1, min(window, limit))
