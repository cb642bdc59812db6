"""An import on the History page (issue 12, item 9): the list and the sidebar show the imported
conversations at once, and what was already here is named by its title. A real browser."""

from __future__ import annotations

from urllib.parse import urljoin

import httpx
import pytest

from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import open_services
from testkit.browser import open_history, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeOllama

pytestmark = pytest.mark.browser


def test_an_import_shows_at_once_and_names_what_it_skipped(
    browser, fake_ollama: FakeOllama, tmp_path
) -> None:
    elsewhere = open_services(Settings(fake_ollama.url, tmp_path / "elsewhere.duckdb", 8501))
    for conversation_id, text in [("kept", "Already here"), ("brought", "Brought along")]:
        elsewhere.chat.send(conversation_id, text, "llama3.2", GenerationParams()).consume()
    export = tmp_path / "export.json"
    export.write_bytes(elsewhere.transfer.export_json())
    elsewhere.close()
    db_path = tmp_path / "chat.duckdb"
    here = open_services(Settings(fake_ollama.url, db_path, 8501))
    here.chat.send("kept", "Already here", "llama3.2", GenerationParams()).consume()
    here.close()

    env = {"OLLAMA_HOST": fake_ollama.url, "CHAT_DB": str(db_path)}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        from playwright.sync_api import expect

        page, main = open_history(browser, url)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("button", name="Brought along")).to_have_count(0)

        main.get_by_text("Export and import").click()
        main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(export))
        main.get_by_role("button", name="Import", exact=True).click()
        wait_until_idle(page)
        expect(main.get_by_text("Imported 1 conversation(s)")).to_be_visible()
        # named by its title alone: its id ("kept") means nothing to the user
        skipped = main.get_by_text("Skipped 1 already here: Already here", exact=True)
        expect(skipped).to_be_visible()
        expect(sidebar.get_by_role("button", name="Brought along")).to_be_visible()
        expect(main.get_by_text("Page (of 1, 2 conversations)")).to_be_visible()

        # "Export JSON" under the same panel links to the streamed REST export
        link = main.get_by_role("link", name="Export JSON")
        href = link.get_attribute("href") or ""
        assert "api/export/download/" in href
        downloaded = httpx.get(urljoin(page.url, href), timeout=30)
        assert downloaded.status_code == 200
        assert "attachment" in downloaded.headers["content-disposition"]
        exported = downloaded.json()
        assert sorted(c["id"] for c in exported["conversations"]) == ["brought", "kept"]
