"""Fitting history into a context window: oldest whole turns go first, the system prompt stays."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatcore.context import DoesNotFit, fit_history, reply_reserve
from chatcore.types import ChatMessage


def msg(role: str, content: str) -> ChatMessage:
    return ChatMessage(role=role, content=content)


def chars(messages: Sequence[ChatMessage]) -> int:
    """A stand-in tokenizer: one token per character."""
    return sum(len(m["content"]) for m in messages)


DIALOGUE = [
    msg("system", "S" * 10),
    msg("user", "a" * 20),
    msg("assistant", "b" * 20),
    msg("user", "c" * 20),
    msg("assistant", "d" * 20),
    msg("user", "e" * 20),
]


def test_a_dialogue_that_fits_is_kept_whole() -> None:
    fitted = fit_history(DIALOGUE, chars, budget=110)
    assert fitted.messages == DIALOGUE
    assert (fitted.dropped, fitted.tokens) == (0, 110)


def test_the_oldest_turn_goes_first_and_the_system_prompt_stays() -> None:
    fitted = fit_history(DIALOGUE, chars, budget=109)
    assert fitted.messages == [DIALOGUE[0], *DIALOGUE[3:]]
    assert (fitted.dropped, fitted.tokens) == (2, 70)


def test_history_goes_in_whole_turns_so_the_dialogue_starts_with_the_user() -> None:
    # dropping the first user message alone would fit, but would leave a reply without its question
    lopsided = [msg("user", "a" * 50), msg("assistant", "b"), msg("user", "c" * 10)]
    fitted = fit_history(lopsided, chars, budget=20)
    assert fitted.messages == [lopsided[2]]
    assert fitted.dropped == 2


def test_the_newest_message_stays_when_all_history_must_go() -> None:
    fitted = fit_history(DIALOGUE, chars, budget=30)
    assert fitted.messages == [DIALOGUE[0], DIALOGUE[-1]]
    assert fitted.dropped == 4


def test_a_message_too_big_for_the_window_is_refused_with_its_size() -> None:
    with pytest.raises(DoesNotFit) as refused:
        fit_history(DIALOGUE, chars, budget=29)
    assert (refused.value.tokens, refused.value.budget) == (30, 29)


def test_long_histories_are_measured_a_logarithmic_number_of_times() -> None:
    history = [msg(role, "x" * 10) for _ in range(500) for role in ("user", "assistant")]
    calls: list[int] = []

    def counting(messages: Sequence[ChatMessage]) -> int:
        calls.append(len(messages))
        return chars(messages)

    fitted = fit_history([*history, msg("user", "y" * 10)], counting, budget=1000)
    assert fitted.tokens <= 1000 and fitted.dropped == 902
    assert len(calls) <= 12


def test_the_reply_keeps_what_it_asked_for_but_at_most_half_the_window() -> None:
    assert reply_reserve(500, 4096) == 500
    assert reply_reserve(32768, 4096) == 2048
