"""Editing an earlier message in a real browser (Debian's chromium, `streamlit run`): the edit is
sent as a new branch, ‹ › switch between the two, and a reload keeps the branch last looked at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def echo_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama([FakeModel("llama3.2:latest", echo=True)]).start()
    yield server
    server.stop()


def texts(page) -> list[str]:  # type: ignore[no-untyped-def]
    messages = page.get_by_test_id("stChatMessage")
    return [messages.nth(i).get_by_test_id("stMarkdown").first.inner_text().strip()
            for i in range(messages.count())]  # fmt: skip


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stChatInputTextArea").fill(text)
    page.keyboard.press("Enter")
    page.get_by_test_id("stChatMessage").filter(has_text=f"You said: {text}").wait_for()
    wait_until_idle(page)


def test_edit_an_earlier_message_switch_and_reload(browser, echo_ollama, tmp_path) -> None:
    env = {"OLLAMA_HOST": echo_ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb")}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        for text in ("one", "two", "three"):
            send(page, text)
        assert texts(page) == [
            "one", "You said: one", "two", "You said: two", "three", "You said: three",
        ]  # fmt: skip

        second = page.get_by_test_id("stChatMessage").nth(2)
        second.get_by_role("button", name="Edit").click()
        editor = page.get_by_test_id("stPopoverBody").get_by_role("textbox")
        editor.fill("two, edited")
        editor.press("Tab")  # the text area commits its value on blur
        page.get_by_role("button", name="Send as a new branch").click()
        page.get_by_text("You said: two, edited").wait_for()
        wait_until_idle(page)
        assert texts(page) == ["one", "You said: one", "two, edited", "You said: two, edited"]
        edited = page.get_by_test_id("stChatMessage").nth(2)
        assert "2 / 2" in edited.inner_text()

        edited.get_by_role("button", name="‹").click()
        page.get_by_text("You said: three").wait_for()
        wait_until_idle(page)
        assert texts(page)[2:] == ["two", "You said: two", "three", "You said: three"]

        page.reload()
        wait_until_idle(page)
        page.get_by_text("You said: three").wait_for()
        assert (
            texts(page)[2] == "two"
            and "1 / 2" in page.get_by_test_id("stChatMessage").nth(2).inner_text()
        )
        page.screenshot(path=str(tmp_path / "branches.png"))
