"""`<think>` tags written inline are parsed into Thinking pieces, however the text is split."""

from __future__ import annotations

import pytest

from chatcore.thinking import split_inline_thinking
from chatcore.types import Metrics, Thinking

END = Metrics(completion_tokens=3)


def split(pieces: list[object]) -> tuple[str, str, list[object]]:
    out = list(split_inline_thinking(iter(pieces)))  # type: ignore[arg-type]
    thinking = "".join(p for p in out if type(p) is Thinking)
    answer = "".join(p for p in out if type(p) is str)
    return thinking, answer, out


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>", "a b", "</think>", "Answer"],
        ["<th", "ink>a", " b</th", "ink>Ans", "wer"],
        ["\n", "<think>a b</think>\n\nAnswer"],
        list("<think>a b</think>Answer"),
    ],
)
def test_tags_split_anywhere_are_parsed(pieces: list[str]) -> None:
    thinking, answer, out = split([*pieces, END])
    assert (thinking, answer) == ("a b", "Answer")
    assert out[-1] is END
    assert not any("<" in p for p in out if isinstance(p, str))


def test_a_plain_reply_passes_through_untouched() -> None:
    pieces = ["Hello", " <think> is a tag", END]
    assert list(split_inline_thinking(iter(pieces))) == pieces  # type: ignore[arg-type]


def test_native_thinking_is_left_alone() -> None:
    pieces = [Thinking("hmm"), "<think>literal</think>", END]
    assert list(split_inline_thinking(iter(pieces))) == pieces  # type: ignore[arg-type]


def test_thinking_cut_off_before_its_end_tag_stays_thinking() -> None:
    thinking, answer, _ = split(["<think>still going</thi", END])
    assert (thinking, answer) == ("still going</thi", "")


def test_an_empty_reply_is_empty() -> None:
    assert list(split_inline_thinking(iter([END]))) == [END]  # type: ignore[arg-type]
    assert list(split_inline_thinking(iter([]))) == []
