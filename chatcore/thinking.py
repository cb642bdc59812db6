"""Reasoning written inline: `<think>...</think>` in a reply's text becomes Thinking pieces.

Models that Ollama does not treat as thinking models (and GGUF files run by the embedded engine)
may open their reply with `<think>` and reason in the answer's text. `split_inline_thinking`
looks at the start of a stream only: a reply that does not open with the tag is passed on as it
came (an `itertools.chain`, no Python frame per token), so plain replies pay nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from chatcore.types import Piece, Thinking

OPEN, CLOSE = "<think>", "</think>"


def split_inline_thinking(source: Iterator[Piece]) -> Iterator[Piece]:
    """The stream with a leading `<think>...</think>` turned into Thinking pieces.

    Reads ahead only as far as it takes to tell whether the answer text opens with the tag.
    """
    seen: list[Piece] = []
    text = ""
    for piece in source:
        seen.append(piece)
        if piece.__class__ is not str:  # native thinking or the end: nothing inline to parse
            return itertools.chain(seen, source)
        text += piece
        start = text.lstrip()
        if not start:
            continue
        if start.startswith(OPEN):
            return parse_tags(text.lstrip()[len(OPEN) :], source)
        if not OPEN.startswith(start):
            return itertools.chain(seen, source)
    return iter(seen)


def parse_tags(after_open: str, source: Iterator[Piece]) -> Iterator[Piece]:
    """Inside `<think>` until `</think>`, then the answer; a tag may be split over pieces."""
    pieces: Iterator[Piece] = itertools.chain([after_open] if after_open else [], source)
    pending = ""
    thinking = True
    for piece in pieces:
        if piece.__class__ is not str:
            if pending:
                yield Thinking(pending) if thinking else pending
                pending = ""
            yield piece
            continue
        if not thinking:
            yield piece
            continue
        pending += piece
        end = pending.find(CLOSE)
        if end >= 0:
            if end:
                yield Thinking(pending[:end])
            answer = pending[end + len(CLOSE) :].lstrip()
            pending, thinking = "", False
            if answer:
                yield answer
            continue
        keep = partial_tag_length(pending)  # a tag may be arriving: hold back what could be it
        if len(pending) > keep:
            yield Thinking(pending[: len(pending) - keep])
            pending = pending[len(pending) - keep :]
    if pending:
        yield Thinking(pending) if thinking else pending


def partial_tag_length(text: str) -> int:
    """How many characters at the end of `text` could be the start of `</think>`."""
    for size in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if CLOSE.startswith(text[-size:]):
            return size
    return 0
