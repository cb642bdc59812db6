"""A blind compare round in a real browser: both columns stream at once, the vote reveals the names
and lands in DuckDB. Debian's chromium driven by Playwright against `streamlit run`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.storage.db import Database
from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

MODELS = ["llama3.2:latest", "qwen3:4b"]


def story(word: str) -> str:
    return " ".join(f"{word}{i}" for i in range(30))


@pytest.fixture
def two_models() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel(MODELS[0], reply=story("llama"), token_delay=0.06),
            FakeModel(MODELS[1], reply=story("qwen"), token_delay=0.09),
        ]
    ).start()
    yield server
    server.stop()


def test_a_blind_round_streams_side_by_side_then_votes_and_reveals(
    browser, two_models: FakeOllama, tmp_path: Path
) -> None:
    db_file = tmp_path / "chat.duckdb"
    env = {"OLLAMA_HOST": two_models.url, "CHAT_DB": str(db_file)}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_text("Compare").click()
        wait_until_idle(page)
        main = page.get_by_test_id("stMainBlockContainer")
        assert main.get_by_text("Answer A").count() == 0

        page.get_by_test_id("stChatInputTextArea").fill("Tell me a story")
        page.keyboard.press("Enter")

        columns = main.get_by_test_id("stColumn")
        both_partial = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if columns.count() >= 2:
                first, second = columns.nth(0).inner_text(), columns.nth(1).inner_text()
                if "29" in first and "29" in second:
                    break
                if all("0" in t and "29" not in t for t in (first, second)):
                    both_partial += 1  # both columns mid-stream at the same moment
            time.sleep(0.05)
        assert both_partial >= 3, "the two answers did not stream at the same time"
        wait_until_idle(page)

        answers = [columns.nth(i).inner_text() for i in range(2)]
        assert answers[0].startswith("Answer A") and answers[1].startswith("Answer B")
        assert not any(model in text for text in answers for model in MODELS)  # still blind
        b_model = MODELS[0] if "llama0" in answers[1] else MODELS[1]

        main.get_by_role("button", name="B is better").click()
        wait_until_idle(page)
        verdict = main.get_by_test_id("stAlertContentSuccess").inner_text()
        assert verdict.startswith("You voted: B is better.")
        assert f"B was {b_model}" in verdict
        assert main.get_by_text(f"B · {b_model}").count() == 1
        page.wait_for_selector("[data-testid='stDataFrame']", timeout=30_000)  # the leaderboard
        page.screenshot(path=str(tmp_path / "compare.png"))

        # a second round, stopped mid-stream: the stop button stops both columns
        page.get_by_test_id("stChatInputTextArea").fill("Another story")
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            texts = [columns.nth(i).inner_text() for i in range(min(columns.count(), 2))]
            fresh = len(texts) == 2 and texts[0].startswith("Answer A")  # not round one's
            if fresh and all(re.search(r"(llama|qwen)3\b", t) for t in texts):
                break
            time.sleep(0.05)
        page.get_by_test_id("stChatInputStopButton").click()
        wait_until_idle(page)

    db = Database(db_file)  # the server has let go of the file
    with db.cursor() as cur:
        judged = cur.execute(
            """
            SELECT v.outcome, r.model FROM votes v
            JOIN compare_entries e ON e.round_id = v.round_id AND e.label = v.winner_label
            JOIN runs r ON r.id = e.run_id
            """
        ).fetchall()
        stopped = cur.execute(
            """
            SELECT r.status, length(m.content) FROM compare_entries e
            JOIN runs r ON r.id = e.run_id JOIN messages m ON m.id = r.message_id
            WHERE e.round_id = (SELECT max(id) FROM compare_rounds)
            """
        ).fetchall()
    db.close()
    assert judged == [("best", b_model)]
    assert [status for status, _ in stopped] == ["stopped", "stopped"]
    assert all(0 < length < len(story("qwen")) for _, length in stopped)


def test_stop_leaves_a_finished_round_that_survives_a_reload(browser, tmp_path: Path) -> None:
    server = FakeOllama(
        [
            FakeModel(MODELS[0], reply=" ".join(f"llama{i}" for i in range(300)), token_delay=0.05),
            FakeModel(MODELS[1], reply=" ".join(f"qwen{i}" for i in range(300)), token_delay=0.05),
        ]
    ).start()
    env = {"OLLAMA_HOST": server.url, "CHAT_DB": str(tmp_path / "chat.duckdb"), "EMBEDDED": "0"}
    try:
        with streamlit_server(env, tmp_path / "streamlit.log") as url:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/compare")
            wait_until_idle(page)
            page.get_by_test_id("stChatInputTextArea").fill("Talk forever")
            page.keyboard.press("Enter")
            main = page.get_by_test_id("stMainBlockContainer")
            main.get_by_text("streaming", exact=False).first.wait_for(timeout=15_000)
            page.get_by_test_id("stChatInputStopButton").click()
            # no other click: each column's final state and the vote
            main.get_by_role("button", name="Tie").wait_for(timeout=10_000)
            wait_until_idle(page)
            assert main.get_by_text("streaming ·", exact=False).count() == 0
            captions = main.get_by_test_id("stCaptionContainer").all_inner_texts()
            assert sum(text.strip().endswith("stopped") for text in captions) == 2
            assert "round=" in page.url

            page.reload()
            wait_until_idle(page)
            main.get_by_role("button", name="Tie").wait_for(timeout=10_000)
            assert "Talk forever" in main.get_by_test_id("stChatMessage").first.inner_text()
    finally:
        server.stop()
