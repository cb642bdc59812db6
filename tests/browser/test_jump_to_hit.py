"""From a search hit in History to its message in the middle of a long conversation in Chat."""

from __future__ import annotations

import json
import re

import pytest

from chatcore.config import Settings
from chatcore.services import open_services
from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeOllama
from testkit.long_conversations import conversation_document

pytestmark = pytest.mark.browser

RARE = "narwhal"
# The page's own area: Streamlit names it stMain, but on a page with a chat input it is the
# scroll-to-bottom container; the block container inside is there on every page.
CONTENT = "stMainBlockContainer"
FOUND_SHOWN = (
    f"() => (document.querySelector(\"[data-testid='{CONTENT}']\")?.innerText ?? '')"
    ".includes('Found by your search')"
)


def long_history_with_a_rare_word(fake_ollama: FakeOllama, db_path) -> None:  # type: ignore[no-untyped-def]
    """A 300-message conversation whose reply "Answer 60." (message 122) mentions RARE."""
    document = json.loads(conversation_document([300], fake_ollama.url))
    message = document["conversations"][0]["messages"][121]
    message["content"] = f"Answer 60. The {RARE} swims past **here**."
    services = open_services(Settings(fake_ollama.url, db_path, 8501))
    try:
        services.transfer.import_json(json.dumps(document).encode())
    finally:
        services.close()


def test_a_search_hit_opens_chat_at_its_message(browser, fake_ollama, tmp_path) -> None:
    from playwright.sync_api import expect

    db_path = tmp_path / "chat.duckdb"
    long_history_with_a_rare_word(fake_ollama, db_path)
    env = {"OLLAMA_HOST": fake_ollama.url, "CHAT_DB": str(db_path), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="History").click()
        wait_until_idle(page)
        main = page.get_by_test_id(CONTENT)
        box = main.get_by_role("textbox", name="Search conversations")
        box.fill(RARE.upper())
        box.press("Enter")
        wait_until_idle(page)
        expect(main.get_by_text("1 conversation(s) match.")).to_be_visible()
        # the match marked in bold, the rest shown as written (its ** not read as Markdown)
        expect(main.locator("strong", has_text=RARE)).to_have_count(1)
        expect(main.get_by_text("swims past **here**.")).to_be_visible()

        main.get_by_role("button", name="Open in Chat at this message").click()
        # the click reruns History, whose next run switches to Chat: wait for Chat's
        page.wait_for_url(re.compile(r"c=size-300"), timeout=60_000)
        wait_until_idle(page)
        page.wait_for_function(FOUND_SHOWN, timeout=120_000)
        messages = main.get_by_test_id("stChatMessage")
        expect(messages.first).to_contain_text("Question 60: tell me more.", timeout=120_000)
        expect(messages.nth(1)).to_contain_text(f"The {RARE} swims past")
        assert messages.count() <= 20
        page.screenshot(path=str(tmp_path / "jumped.png"))

        back = main.locator("button", has_text="Back to the latest")
        expect(back).to_be_visible(timeout=120_000)
        back.click()
        wait_until_idle(page)
        page.wait_for_function(f"() => !({FOUND_SHOWN})()", timeout=120_000)
        expect(messages.last).to_contain_text("Answer 149.", timeout=120_000)
        expect(main.get_by_role("button", name="Show earlier messages")).to_be_visible()
