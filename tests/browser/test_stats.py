"""The Stats page in a real browser: its charts render and its downloads arrive."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from chatcore.storage.db import Database
from testkit.browser import ROOT, streamlit_server, wait_until_idle
from testkit.ports import closed_port_url
from testkit.stats_data import RUNS, insert_runs

pytestmark = pytest.mark.browser


def test_stats_page_draws_its_charts_and_downloads_the_runs(browser, tmp_path: Path) -> None:
    db_path = tmp_path / "chat.duckdb"
    db = Database(db_path)
    insert_runs(db, RUNS)
    db.close()
    env = {"OLLAMA_HOST": closed_port_url(), "CHAT_DB": str(db_path)}
    with streamlit_server(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
        page.goto(url)
        wait_until_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_text("Stats").click()
        wait_until_idle(page)
        page.wait_for_function(
            'document.querySelectorAll(\'[data-testid="stVegaLiteChart"] canvas,'
            ' [data-testid="stVegaLiteChart"] svg.marks\').length >= 4',
            timeout=30_000,
        )
        assert page.get_by_test_id("stMetric").count() == 9
        page.screenshot(path=str(tmp_path / "stats.png"), full_page=True)
        if os.environ.get("UPDATE_SCREENSHOT"):  # the README's picture: UPDATE_SCREENSHOT=1
            page.screenshot(path=str(ROOT / "docs" / "stats.png"), full_page=True)

        with page.expect_download() as download:
            page.get_by_role("button", name="Runs as CSV").click()
        runs = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert sorted(runs["id"]) == [r.id for r in RUNS]
        with page.expect_download() as download:
            page.get_by_role("button", name="Runs as Parquet").click()
        runs = pd.read_parquet(Path(download.value.path()))
        assert len(runs) == len(RUNS)
