"""A small suite in a real browser: typed in, run against two models into the live matrix, then a
blind vote that lands in DuckDB and on the leaderboard. Debian's chromium driven by Playwright
against `streamlit run`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.storage.db import Database
from testkit.browser import streamlit_server, wait_until_idle
from testkit.fake_ollama import FakeModel, FakeOllama

pytestmark = pytest.mark.browser

MODELS = ["llama3.2:latest", "qwen3:4b"]


@pytest.fixture
def two_models() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel(MODELS[0], reply="llama says " + "word " * 20, token_delay=0.03),
            FakeModel(MODELS[1], reply="qwen says " + "word " * 20, token_delay=0.03),
        ]
    ).start()
    yield server
    server.stop()


def test_a_small_suite_runs_into_the_matrix_and_a_blind_vote_counts(
    browser, two_models: FakeOllama, tmp_path: Path
) -> None:
    db_file = tmp_path / "chat.duckdb"
    env = {"OLLAMA_HOST": two_models.url, "CHAT_DB": str(db_file), "EMBEDDED": "0"}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        wait_until_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_text("Suites").click()
        wait_until_idle(page)
        main = page.get_by_test_id("stMainBlockContainer")

        main.get_by_label("Name").fill("Tiny")
        main.get_by_label("Prompts, one per line").fill("First question\nSecond question")
        main.get_by_role("button", name="Create suite").click()
        wait_until_idle(page)

        picker = main.get_by_test_id("stMultiSelect").inner_text()
        assert all(model in picker for model in MODELS)  # the first two models, picked
        main.get_by_role("button", name="Run the suite").click()

        # the live matrix fills without a click: the fragment redraws it every second
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if main.get_by_text("finished · 4 of 4 cells answered").count():
                break
            time.sleep(0.2)
        assert main.get_by_text("finished · 4 of 4 cells answered").count() == 1
        wait_until_idle(page)

        assert main.get_by_text("Answer A").count() == 1
        main.get_by_role("button", name="A is better").click()
        wait_until_idle(page)
        stored = main.get_by_test_id("stAlertContentSuccess").inner_text()
        assert stored.startswith("Vote stored. A was ")
        page.wait_for_selector("[data-testid='stDataFrame'] >> nth=1", timeout=30_000)
        page.screenshot(path=str(tmp_path / "suites.png"))

    database = Database(db_file)
    try:
        with database.cursor() as cur:
            votes = cur.execute("SELECT outcome FROM pair_votes").fetchall()
            cells = cur.execute("SELECT count(*) FROM suite_cells").fetchone()
    finally:
        database.close()
    assert votes == [("a",)] and cells == (4,)
