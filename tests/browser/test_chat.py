"""The main chat flow in a real browser: Debian's chromium driven by Playwright, `streamlit run`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from testkit.browser import ROOT, model_picker, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

STORY = " ".join(f"word{i}" for i in range(40))


LONG_STORY = " ".join(f"part{i}" for i in range(300))


@pytest.fixture(scope="module")
def slow_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", reply=STORY, token_delay=0.05),
            FakeModel("verbose:latest", reply=LONG_STORY, token_delay=0.05),
        ]
    ).start()
    yield server
    server.stop()


def test_chat_streams_and_survives_a_reload(browser, slow_ollama, tmp_path) -> None:
    env = {"OLLAMA_HOST": slow_ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb")}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        wait_until_idle(page)

        page.get_by_test_id("stChatInputTextArea").fill("Tell me a story")
        page.keyboard.press("Enter")

        reply = page.get_by_test_id("stChatMessage").nth(1)
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if reply.count():
                text = reply.inner_text()
                seen.add(text)
                if "word39" in text:
                    break
            time.sleep(0.05)
        partial = [t for t in seen if "word0" in t and "word39" not in t]
        assert len(partial) >= 3, f"the reply did not stream: {sorted(seen)[:3]}"
        wait_until_idle(page)
        caption = reply.get_by_test_id("stCaptionContainer").inner_text()
        assert "llama3.2:latest · 40 tokens" in caption and "tok/s" in caption
        print("caption:", caption)
        page.screenshot(path=str(tmp_path / "chat.png"))
        if os.environ.get("UPDATE_SCREENSHOT"):  # the README's picture: UPDATE_SCREENSHOT=1
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))

        page.reload()
        wait_until_idle(page)
        messages = page.get_by_test_id("stChatMessage")
        assert messages.count() == 2
        assert messages.nth(0).get_by_test_id("stMarkdown").first.inner_text().strip() == (
            "Tell me a story"
        )
        assert "word39" in messages.nth(1).inner_text()
        sidebar = page.get_by_test_id("stSidebar")
        assert sidebar.get_by_text("Tell me a story").count() == 1

        # a new session, with no URL state, finds it in the sidebar
        fresh = browser.new_page()
        fresh.goto(url)
        wait_until_idle(fresh)
        fresh.get_by_test_id("stSidebar").get_by_text("Tell me a story").click()
        fresh.get_by_test_id("stChatMessage").nth(1).get_by_text("word39").wait_for()
        wait_until_idle(fresh)
        assert fresh.get_by_test_id("stChatMessage").count() == 2


def test_stop_ends_the_reply_and_keeps_what_arrived(browser, slow_ollama, tmp_path) -> None:
    env = {"OLLAMA_HOST": slow_ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb")}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page()
        page.goto(url)
        wait_until_idle(page)
        model_picker(page).click()
        page.get_by_role("option").filter(has_text="verbose:latest").click()
        wait_until_idle(page)

        page.get_by_test_id("stChatInputTextArea").fill("Go on and on")
        page.keyboard.press("Enter")
        reply = page.get_by_test_id("stChatMessage").nth(1)
        reply.get_by_text("part5", exact=False).wait_for(timeout=15_000)
        page.get_by_test_id("stChatInputStopButton").click()
        wait_until_idle(page)
        cancelled_before = slow_ollama.cancelled

        page.reload()
        wait_until_idle(page)
        stored = page.get_by_test_id("stChatMessage").nth(1)
        text = stored.inner_text()
        assert "part5" in text and "part299" not in text
        caption = stored.get_by_test_id("stCaptionContainer").inner_text()
        assert caption.startswith("verbose:latest") and caption.endswith("stopped")
        assert cancelled_before >= 1  # closing the stream ended generation on the server


def test_a_page_url_opened_first_after_start_has_the_router_and_sidebar(
    browser, slow_ollama, tmp_path
) -> None:
    env = {"OLLAMA_HOST": slow_ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb")}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page()
        page.goto(f"{url}/compare")  # the server's very first request
        wait_until_idle(page)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_test_id("stSlider").first.wait_for(timeout=15_000)
        assert sidebar.get_by_test_id("stSlider").count() == 2  # temperature and top p
        assert model_picker(page).count() == 1  # the shared model picker
