"""Every page in Chinese: no English interface word is left on it, model and user text stays as it
was written, and the switch in the sidebar turns the interface to English and back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

from testkit.apptest import new_app, release_cached_services
from testkit.ports import closed_port_url

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "pages/chat.py",
    "pages/compare.py",
    "pages/suites.py",
    "pages/history.py",
    "pages/stats.py",
    "pages/models.py",
    "pages/knowledge.py",
]
# Names that stay as they are in Chinese (products, formats, units, parameter names).
KEPT = {
    "ollama", "openai", "json", "jsonl", "csv", "parquet", "markdown", "pdf", "word", "html",
    "elo", "bradley", "terry", "top", "api", "vram", "token", "tokens", "think", "llama",
    "vllm", "sglang", "studio", "litellm", "num_ctx", "backups_keep", "chat_db", "pull",
    "sk", "env", "variable", "name", "prompt", "category", "reference", "critique", "fusion",
    "drafter", "critic", "reviser", "model", "synthesiser", "material", "visibility", "cpp",
    "latest", "context_max",
}  # fmt: skip
INTERFACE_ELEMENTS = (
    "title", "header", "subheader", "caption", "info", "warning", "success", "error",
    "button", "selectbox", "slider", "number_input", "text_area", "text_input", "toggle",
    "checkbox", "expander", "tab", "metric", "multiselect", "date_input", "radio",
)  # fmt: skip


TEXT_ELEMENTS = {"title", "header", "subheader", "caption", "info", "warning", "success", "error"}


def english_interface_words() -> set[str]:
    with (ROOT / "ui/locales/zh_CN/LC_MESSAGES/messages.po").open("rb") as file:
        catalog = read_po(file, locale="zh_CN")
    words: set[str] = set()
    for message in catalog:
        source = message.id if isinstance(message.id, str) else (message.id or ("",))[0]
        without_placeholders = re.sub(r"\{[^}]*\}|`[^`]*`", " ", source)
        words |= {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z_]{2,}", without_placeholders)}
    return words - KEPT


def interface_texts(at: AppTest) -> Iterator[str]:
    """The interface's own words: labels, headings, notes, buttons, placeholders. Not what the
    user or a model wrote (chat messages, conversation titles in the sidebar)."""
    for kind in INTERFACE_ELEMENTS:
        for element in at.get(kind):
            if kind == "button" and str(getattr(element, "key", "")).startswith("conv-"):
                continue
            attributes = ["label", "placeholder", "help"]
            if kind in TEXT_ELEMENTS:  # their value is the text they show
                attributes.append("value")
            for attribute in attributes:
                try:
                    text = getattr(element, attribute, None)
                except ValueError:  # AppTest formats some values outside the page's run
                    continue
                if isinstance(text, str):
                    yield text


def english_left(at: AppTest, words: set[str]) -> list[str]:
    left = []
    for text in interface_texts(at):
        text = re.sub(r"`[^`]*`", " ", text)  # code: names of settings, files, commands
        found = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z_]{2,}", text)} & words
        if found:
            left.append(f"{sorted(found)} in {text[:80]!r}")
    return left


@pytest.fixture
def chinese_app(app_env) -> Iterator[AppTest]:
    at = new_app()
    at.query_params["lang"] = "zh_CN"
    at.run()
    yield at
    release_cached_services()


def test_every_page_in_chinese_has_no_english_interface_word(chinese_app: AppTest) -> None:
    at = chinese_app
    at.chat_input[0].set_value("Hello model").run()  # something in History and Stats
    assert not at.exception
    words = english_interface_words()
    assert {"temperature", "regenerate", "history"} <= words
    assert at.sidebar.button and not english_left(at, words)  # the sidebar, with the Chat page
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert not english_left(at, words), (page, english_left(at, words))


def test_model_and_user_text_are_never_translated(chinese_app: AppTest) -> None:
    at = chinese_app
    at.chat_input[0].set_value("Hello model").run()
    assert at.chat_message[0].markdown[0].value == "Hello model"
    assert at.chat_message[1].markdown[0].value == "Hello there, I am a small model."
    caption = at.chat_message[1].caption[0].value
    assert caption.startswith("llama3.2:latest · 7 个 token ·")  # the model's name as it is


def test_the_switch_turns_the_interface_to_english_and_back(chinese_app: AppTest) -> None:
    at = chinese_app
    assert at.button(key="new-chat").label == "新对话"
    at.selectbox(key="language-switch").select("en").run()
    assert at.button(key="new-chat").label == "New chat"
    assert "lang" not in at.query_params  # English is this browser's own language
    at.selectbox(key="language-switch").select("zh_CN").run()
    assert at.button(key="new-chat").label == "新对话"


def test_an_english_browser_sees_english(app_env) -> None:
    at = new_app().run()
    try:
        assert at.button(key="new-chat").label == "New chat"
        assert at.slider(key="temperature").label == "Temperature"
    finally:
        release_cached_services()


def test_a_server_that_is_down_is_said_in_chinese(monkeypatch, db_path: Path) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.setenv("EMBEDDED", "0")
    monkeypatch.chdir(ROOT)
    try:
        at = new_app()
        at.query_params["lang"] = "zh_CN"
        at.run()
        assert not at.exception
        warnings = [w.value for w in at.sidebar.warning]
        assert any("没有响应" in w and "ollama serve" in w for w in warnings), warnings
        assert not english_left(at, english_interface_words())
    finally:
        release_cached_services()
