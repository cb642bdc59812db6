"""History's list (search box, filters, results) reruns on its own: a search redraws the results,
matched words marked, without running the sidebar and the rest of the page again; opening a
hit runs the whole page, so everything on screen is current again."""

from __future__ import annotations

import json
import urllib.request

import pytest

from chatcore.config import Settings
from chatcore.services import open_services
from testkit.browser import open_history, streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeOllama
from testkit.history_data import varied_history

pytestmark = pytest.mark.browser

FROM_API = "A quokka note sent through the API"


def send_through_the_api(url: str) -> None:
    """A new conversation the open page has not drawn (the server owns the database file)."""
    body = {"message": FROM_API, "conversation_id": "from-api",
            "model_params": {"model": "llama3.2"}}  # fmt: skip
    request = urllib.request.Request(
        f"{url}/api/chat",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def test_a_search_reruns_only_the_list_and_a_hit_opens_the_whole_page(
    browser, fake_ollama: FakeOllama, tmp_path
) -> None:
    from playwright.sync_api import expect

    db_path = tmp_path / "chat.duckdb"
    services = open_services(Settings(fake_ollama.url, db_path, 8501))
    varied_history(services, fake_ollama)
    services.close()
    env = {"OLLAMA_HOST": fake_ollama.url, "CHAT_DB": str(db_path), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page, main = open_history(browser, url)
        send_through_the_api(url)

        box = main.get_by_role("textbox", name="Search conversations")
        box.fill("QUOKKA")
        box.press("Enter")
        wait_until_idle(page)
        expect(main.get_by_text("2 conversation(s) match.")).to_be_visible()
        marked = main.locator("strong", has_text="quokka")
        expect(marked).to_have_count(2)
        assert sorted(marked.all_inner_texts()) == ["Quokka", "quokka"]  # each as written
        sidebar = page.get_by_test_id("stSidebar")
        # the sidebar was not run again: it still lists what it listed before the search
        expect(sidebar.get_by_role("button", name="A story about a Quokka please")).to_be_visible()
        expect(sidebar.get_by_role("button", name=FROM_API)).to_have_count(0)

        main.get_by_role("button", name=FROM_API).click()
        wait_until_idle(page)
        expect(main.get_by_role("heading", name=FROM_API)).to_be_visible()
        expect(sidebar.get_by_role("button", name=FROM_API)).to_be_visible()  # the whole page

        main.get_by_role("button", name="All conversations").click()
        wait_until_idle(page)
        expect(main.get_by_text("2 conversation(s) match.")).to_be_visible()  # the search kept
