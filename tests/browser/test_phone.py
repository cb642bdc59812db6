"""On a 390-pixel-wide phone the sidebar covers the page: it closes after choosing a page or a
conversation (issue 12, item 10), and stays open while its controls are used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama([FakeModel("quick:latest", reply="Quick answer.")]).start()
    yield server
    server.stop()


@pytest.fixture
def url(ollama: FakeOllama, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as address:
        yield address


def collapsed(page) -> bool:  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stSidebar").get_attribute("data-collapsed") == "true"


def open_sidebar(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stExpandSidebarButton").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=stSidebar]').dataset.collapsed === 'false'"
    )


def closes(page) -> bool:  # type: ignore[no-untyped-def]
    """Whether the sidebar closes within a few seconds of the run that followed a choice."""
    wait_until_idle(page)
    try:
        page.wait_for_function(
            "document.querySelector('[data-testid=stSidebar]').dataset.collapsed === 'true'",
            timeout=5_000,
        )
    except Exception:  # Playwright's TimeoutError: it stayed open
        return False
    return True


def test_choosing_a_page_or_a_conversation_closes_the_sidebar(browser, url: str) -> None:
    # a desktop browser's user agent in a phone-sized window: Streamlit's own nav link closes
    # the sidebar only for a "mobile" user agent, so this is the case the app must handle
    page = browser.new_page(viewport=PHONE)
    page.goto(url)
    wait_until_idle(page)
    assert collapsed(page)  # a phone starts with it closed
    page.get_by_test_id("stChatInputTextArea").fill("hello phone")
    page.keyboard.press("Enter")
    page.get_by_text("Quick answer.").wait_for()
    wait_until_idle(page)

    open_sidebar(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Stats").click()
    assert closes(page) and page.url.endswith("/stats")

    open_sidebar(page)  # a control in the sidebar leaves it open
    page.get_by_test_id("stSidebar").get_by_role("slider").first.press("ArrowRight")
    wait_until_idle(page)
    page.wait_for_timeout(1000)
    assert not collapsed(page)

    # a conversation chosen on another page opens on Chat, and the sidebar gets out of the way
    page.get_by_test_id("stSidebar").get_by_role("button", name="hello phone").click()
    assert closes(page)
    page.get_by_text("Quick answer.").wait_for()
    assert "/stats" not in page.url and "c=" in page.url
    page.close()


def test_a_wide_window_keeps_its_sidebar(browser, url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    wait_until_idle(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="Stats").click()
    wait_until_idle(page)
    page.wait_for_timeout(1000)
    assert not collapsed(page)
    page.close()
