"""The Models page in a real browser: two hosts merged in the picker, a pull with live progress."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from testkit.browser import model_picker, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser


@pytest.fixture
def two_hosts() -> Iterator[tuple[FakeOllama, FakeOllama]]:
    a = FakeOllama(
        [FakeModel("llama3.2:latest")],
        library=[
            FakeModel("phi4:latest", family="phi3", layers=(9_000_000_000, 40_000)),
            FakeModel("big:latest", layers=(40_000_000_000,)),
        ],
        pull_delay=0.6,  # about 15 s: the page polls the background pull twice a second
        pull_steps=12,
    ).start()
    b = FakeOllama([FakeModel("llama3.2:latest"), FakeModel("gemma3:1b")]).start()
    yield a, b
    a.stop()
    b.stop()


def picker_options(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Open the sidebar's model picker, read its options, close it."""
    model_picker(page).click()
    options = page.get_by_role("option")
    options.first.wait_for()
    texts = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return texts


def test_pull_shows_live_progress_and_the_model_reaches_the_picker(
    browser, two_hosts, tmp_path
) -> None:
    a, b = two_hosts
    env = {"OLLAMA_HOST": a.url, "OLLAMA_HOSTS": b.url, "CHAT_DB": str(tmp_path / "c.duckdb")}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 2200})
        page.goto(url)  # (a fresh process opened at /models first runs the page alone)
        wait_until_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_text("Models").click()
        wait_until_idle(page)
        assert (
            f"llama3.2:latest · {a.url.removeprefix('http://')}, {b.url.removeprefix('http://')}"
            in picker_options(page)
        )

        name = page.get_by_test_id("stTextInput").filter(has_text="Model name").locator("input")
        name.fill("phi4")
        name.press("Enter")
        wait_until_idle(page)
        page.get_by_role("button", name="Pull", exact=True).click()

        bars = page.get_by_test_id("stMain").get_by_role("progressbar")  # not the sidebar's
        seen: set[str] = set()
        captions: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if bars.count():  # (redrawn as it is polled, and gone once the pull ends)
                try:
                    value = bars.first.get_attribute("aria-valuenow", timeout=1000) or ""
                    main = page.get_by_test_id("stMain").get_by_test_id("stProgress")
                    captions.add(main.first.inner_text(timeout=1000))
                except PlaywrightTimeout:
                    continue
                seen.add(value)
                if len(seen) >= 3:
                    page.screenshot(path=str(tmp_path / "pulling.png"))
                    break
            time.sleep(0.05)
        partial = {v for v in seen if v not in ("", "0", "100")}
        # polled from the background pull (twice a second, slower on a loaded machine)
        assert len(partial) >= 2, f"the progress bar did not move: {sorted(seen)}"
        assert any("GB" in caption for caption in captions), captions

        page.get_by_text(f"Pulled phi4 onto {a.url}.").wait_for(timeout=30_000)
        wait_until_idle(page)
        assert f"phi4:latest · {a.url.removeprefix('http://')}" in picker_options(page)

        # a second pull, cancelled while it runs: the server sees its stream closed
        name.fill("big")
        name.press("Enter")
        wait_until_idle(page)
        page.get_by_role("button", name="Pull", exact=True).click()
        page.get_by_role("progressbar").first.wait_for()
        page.get_by_role("button", name="Cancel pull").click()
        page.get_by_text("Pull of big cancelled.").wait_for(timeout=10_000)
        deadline = time.monotonic() + 10
        while a.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.cancelled == 1 and a.model("big") is None
