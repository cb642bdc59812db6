"""The History flow in a real browser: search, open, rename and delete a conversation."""

from __future__ import annotations

import pytest

from chatcore.config import Settings
from chatcore.services import open_services
from testkit.browser import open_history, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeOllama
from testkit.history_data import varied_history

pytestmark = pytest.mark.browser


def test_search_open_rename_and_delete(browser, fake_ollama: FakeOllama, tmp_path) -> None:
    db_path = tmp_path / "chat.duckdb"
    services = open_services(Settings(fake_ollama.url, db_path, 8501))
    varied_history(services, fake_ollama)
    services.close()

    env = {"OLLAMA_HOST": fake_ollama.url, "CHAT_DB": str(db_path)}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        from playwright.sync_api import expect

        page, main = open_history(browser, url)

        main.get_by_role("textbox", name="Search conversations").fill("quokka")
        main.get_by_role("textbox", name="Search conversations").press("Enter")
        wait_until_idle(page)
        expect(main.get_by_text("1 conversation(s) match.")).to_be_visible()
        main.get_by_role("button", name="A story about a Quokka please").click()
        wait_until_idle(page)
        expect(main.get_by_role("heading", name="A story about a Quokka please")).to_be_visible()
        messages = main.get_by_test_id("stChatMessage")
        expect(messages).to_have_count(2)
        expect(messages.nth(1).get_by_test_id("stCaptionContainer")).to_contain_text("stopped")

        main.get_by_text("Rename or delete").click()
        main.get_by_role("textbox", name="Title").fill("The quokka story")
        main.get_by_role("button", name="Rename").click()
        wait_until_idle(page)
        expect(main.get_by_role("heading", name="The quokka story")).to_be_visible()
        page.screenshot(path=str(tmp_path / "history-open.png"))

        main.get_by_role("button", name="Delete this conversation…").click()
        wait_until_idle(page)
        expect(main.get_by_text("can't be undone")).to_be_visible()
        main.get_by_role("button", name="Delete for good").click()
        wait_until_idle(page)
        expect(main.get_by_role("heading", name="History")).to_be_visible()
        expect(main.get_by_text("Nothing matches “quokka”.")).to_be_visible()

    reopened = open_services(Settings(fake_ollama.url, db_path, 8501))
    try:
        with reopened.db.cursor() as cur:
            left = [
                cur.execute(
                    f"SELECT count(*) FROM {table} WHERE conversation_id = 'beta'"
                ).fetchone()[0]
                for table in ("messages", "runs", "conversation_summaries", "message_search")
            ]
        assert left == [0, 0, 0, 0]
        assert reopened.history.open("beta") is None
        assert reopened.history.list_conversations().total == 2
    finally:
        reopened.close()
