"""The knowledge base end to end in a real browser: a collection made and a Markdown file uploaded
on the Knowledge page, a question in Chat about a fact only that file holds, and the reply's
citation, which opens on the passage. The loopback Ollama embeds (deterministic vectors) and its
chat model echoes the prompt it was sent, so the fact can only reach the reply through retrieval."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

EMBEDDER = "ollama:nomic-embed-text:latest"
FACT = "The Zorblax gate opens with the code 4711 after dusk."
MANUAL = f"# Gate\n\n{FACT}\n\n# Garden\n\nWater the roses on Mondays.\n"


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("llama3.2:latest", echo=True),
            FakeModel("nomic-embed-text:latest", embedding_dims=256, capabilities=("embedding",)),
        ]
    ).start()
    yield server
    server.stop()


def documents(url: str) -> list[dict[str, object]]:
    """The REST twin of the Knowledge page's table (the page draws it on a canvas)."""
    with urllib.request.urlopen(f"{url}/api/documents", timeout=5) as answer:
        return json.loads(answer.read())


def wait_until_indexed(url: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {str(d["name"]): d["status"] for d in documents(url)}
        if states.get(name) == "ready":
            return
        assert states.get(name) != "error", states
        time.sleep(0.2)
    pytest.fail(f"{name} was never indexed")


def test_an_uploaded_document_is_cited_and_its_passage_opens(
    browser, ollama: FakeOllama, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    manual = tmp_path / "gate-manual.md"
    manual.write_text(MANUAL)
    env = {"OLLAMA_HOST": ollama.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        sidebar = page.get_by_test_id("stSidebar")
        main = page.get_by_test_id("stMain")

        # Knowledge: a collection, then the file uploaded into it
        sidebar.get_by_test_id("stSidebarNav").get_by_role("link", name="Knowledge").click()
        expect(main.get_by_role("heading", name="Knowledge")).to_be_visible()
        wait_until_idle(page)
        main.get_by_label("Name").fill("manuals")
        main.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name=EMBEDDER).click()
        main.get_by_role("button", name="Create").click()
        wait_until_idle(page)
        expect(main.get_by_role("heading", name="Collections")).to_be_visible()
        main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(manual))
        uploader = main.get_by_role("region", name="PDF, Word, HTML, Markdown or text")
        expect(uploader).to_contain_text(manual.name)
        page.wait_for_timeout(500)  # the file's upload to the server finishes after it is listed
        main.get_by_role("button", name="Add", exact=True).first.click()
        wait_until_idle(page)
        page.screenshot(path=str(tmp_path / "uploaded.png"))
        wait_until_indexed(url, manual.name)

        # Chat: the collection picked in the sidebar, the question asked
        sidebar.get_by_test_id("stSidebarNav").get_by_role("link", name="Chat").click()
        wait_until_idle(page)
        sidebar.get_by_test_id("stMultiSelect").click()
        page.get_by_role("option", name="manuals").click()
        page.keyboard.press("Escape")
        wait_until_idle(page)
        page.get_by_test_id("stChatInputTextArea").fill("Which code opens the Zorblax gate?")
        page.keyboard.press("Enter")

        reply = page.get_by_test_id("stChatMessage").nth(1)
        citation = reply.get_by_test_id("stExpander").filter(has_text="[1] gate-manual.md")
        expect(citation).to_be_visible(timeout=30_000)
        wait_until_idle(page)
        assert "4711" in reply.inner_text()  # it reached the model only through the passage
        [request] = ollama.chat_requests()
        assert FACT in request["body"]["messages"][-1]["content"]

        # The citation opens on the passage it came from
        passage = citation.get_by_text(FACT)
        expect(passage).to_be_hidden()
        citation.get_by_text("[1] gate-manual.md").click()
        expect(passage).to_be_visible()
        assert "· Gate ·" in citation.inner_text()  # the heading it sits under, in the label
        page.screenshot(path=str(tmp_path / "knowledge.png"))

        # and again after a reload, from what was stored with the reply
        page.reload()
        wait_until_idle(page)
        stored = page.get_by_test_id("stChatMessage").nth(1).get_by_test_id("stExpander")
        expect(stored.filter(has_text="[1] gate-manual.md")).to_have_count(1)
