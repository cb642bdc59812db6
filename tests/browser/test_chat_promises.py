"""Chat's promises in a real browser (issue 12): Regenerate streams like a send, with a stop
button; a stop leaves a finished screen at once; Back and Forward move between conversations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.browser import model_picker, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

LONG_STORY = " ".join(f"part{i}" for i in range(300))


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("quick:latest", reply="Quick answer."),
            FakeModel("verbose:latest", reply=LONG_STORY, token_delay=0.05),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def url(ollama: FakeOllama, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as address:
        yield address


def pick_model(page, name: str) -> None:  # type: ignore[no-untyped-def]
    model_picker(page).click()
    page.get_by_role("option").filter(has_text=name).click()
    wait_until_idle(page)


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stChatInputTextArea").fill(text)
    page.keyboard.press("Enter")


def fresh_elements(page, test_id: str):  # type: ignore[no-untyped-def]
    """Elements of this run, not those left from the previous one (shown faded as stale)."""
    return page.locator(f"[data-testid='{test_id}']:not([data-stale='true'])")


def test_regenerate_streams_with_a_stop_button_and_stops_to_a_finished_screen(
    browser, url: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    wait_until_idle(page)
    pick_model(page, "verbose:latest")
    send(page, "Go on and on")
    page.get_by_test_id("stChatMessage").nth(1).get_by_text("part3", exact=False).wait_for()
    page.get_by_test_id("stChatInputStopButton").click()
    wait_until_idle(page)

    page.get_by_role("button", name="Regenerate").click()
    reply = page.get_by_test_id("stChatMessage").nth(1)
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for(timeout=10_000)  # the stop button appears while it streams
    reply.get_by_text("part2", exact=False).wait_for(timeout=10_000)
    assert reply.get_by_test_id("stCaptionContainer").count() == 0  # the old caption is gone
    assert page.get_by_role("button", name="Regenerate").count() == 0
    stop.click()

    # a finished screen without any further click: the stopped mark and Regenerate
    page.get_by_role("button", name="Regenerate").wait_for(timeout=10_000)
    wait_until_idle(page)
    reply = fresh_elements(page, "stChatMessage").nth(1)
    caption = reply.get_by_test_id("stCaptionContainer").first  # then "2 / 2", its siblings
    assert caption.inner_text().strip().endswith("stopped")
    assert "part299" not in page.get_by_test_id("stChatMessage").nth(1).inner_text()
    assert page.get_by_role("button", name="Stop").count() == 0


def test_the_chat_inputs_stop_leaves_a_finished_screen_at_once(browser, url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    wait_until_idle(page)
    pick_model(page, "verbose:latest")
    send(page, "Keep talking")
    page.get_by_test_id("stChatMessage").nth(1).get_by_text("part3", exact=False).wait_for()
    page.get_by_test_id("stChatInputStopButton").click()
    # no reload, no click: the caption says stopped and Regenerate is offered
    page.get_by_role("button", name="Regenerate").wait_for(timeout=10_000)
    wait_until_idle(page)
    reply = page.get_by_test_id("stChatMessage").nth(1)
    assert reply.get_by_test_id("stCaptionContainer").inner_text().strip().endswith("stopped")


def test_back_and_forward_move_between_conversations(browser, url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    wait_until_idle(page)
    send(page, "Alpha topic")
    page.get_by_text("Quick answer.").wait_for()
    wait_until_idle(page)
    alpha = page.url
    page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    wait_until_idle(page)
    send(page, "Beta topic")
    page.get_by_text("Quick answer.").wait_for()
    wait_until_idle(page)
    beta = page.url
    assert alpha != beta and "c=" in beta

    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("button", name="Alpha topic").click()
    wait_until_idle(page)
    assert page.url == alpha
    assert "Alpha topic" in page.get_by_test_id("stChatMessage").first.inner_text()

    page.go_back()
    wait_until_idle(page)
    assert page.url == beta
    assert "Beta topic" in fresh_elements(page, "stChatMessage").first.inner_text()
    page.go_forward()
    wait_until_idle(page)
    assert page.url == alpha
    assert "Alpha topic" in fresh_elements(page, "stChatMessage").first.inner_text()
