"""Conversation ids: any printable text up to 100 characters, normalised, never a path."""

from __future__ import annotations

import unicodedata

import pytest

from chatcore.errors import InvalidInput
from chatcore.types import as_stored_id, checked_conversation_id


@pytest.mark.parametrize(
    "value",
    [
        "会话-一",
        "default",
        "s1",
        "Ünïcödé chat",
        "日本語の会話",
        "a" * 100,
        "x.y:z_1-2",
        "🙂 emoji",
    ],
)
def test_printable_ids_in_any_script_are_accepted_as_given(value: str) -> None:
    assert checked_conversation_id(value) == value


def test_ids_are_nfc_normalised_so_two_spellings_are_one_conversation() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert checked_conversation_id(decomposed) == "café"
    assert as_stored_id(decomposed) == "café"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * 101,
        "../etc/passwd",
        "a/b",
        "tab\there",
        "new\nline",
        "nul\x00",
        " padded",
        "zw\u200b",
    ],
)
def test_bad_ids_are_refused_with_a_reason(value: str) -> None:
    with pytest.raises(InvalidInput, match="conversation id"):
        checked_conversation_id(value)


def test_a_non_string_id_is_refused() -> None:
    with pytest.raises(InvalidInput):
        checked_conversation_id(12)
