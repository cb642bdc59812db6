"""The Stats page under AppTest, on a real DuckDB file: empty, only failures, a full history."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from chatcore.storage.db import Database
from testkit.apptest import new_app
from testkit.stats_data import LLAMA, QWEN, RUNS, Run, day, insert_runs

# What Streamlit 1.67 records for st.altair_chart under AppTest.
CHART = "vega_lite_chart"


def stats_page(db_path: Path, runs: list[Run]) -> AppTest:
    if runs:
        db = Database(db_path)
        insert_runs(db, runs)
        db.close()
    at = new_app().run()
    at.switch_page("pages/stats.py").run()
    assert not at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_an_empty_database_explains_what_will_appear(app_env, db_path: Path) -> None:
    at = stats_page(db_path, [])
    assert at.title[0].value == "Stats"
    assert "Nothing to count yet" in at.info[0].value
    assert not at.get(CHART) and not at.metric and not at.dataframe


def test_only_failed_runs(app_env, db_path: Path) -> None:
    failed = [
        Run(1, "c1", LLAMA, "error", day(2, 9), 0.5),
        Run(2, "c2", QWEN, "error", day(3, 9), 1),
    ]
    at = stats_page(db_path, failed)
    figures = metrics(at)
    assert figures["Replies"] == "2" and figures["Error rate"] == "100.0%"
    assert figures["Completion tokens"] == "0" and figures["Generation time"] == "1.5 s"
    captions = " ".join(c.value for c in at.caption)
    assert "No tokens counted yet" in captions and "No reply has reported its speed" in captions
    assert len(at.get(CHART)) == 1  # only the activity heatmap has something to draw
    table = at.dataframe[0].value
    assert set(table["model"]) == {LLAMA, QWEN} and table["median_tokens_per_second"].isna().all()


def test_the_full_page_and_its_filters(app_env, db_path: Path) -> None:
    at = stats_page(db_path, RUNS)
    figures = metrics(at)
    assert figures["Conversations"] == "5"
    assert figures["Messages"] == "15"  # your 7 (run 4 was a regeneration) + 8 replies
    assert figures["Replies"] == "8"
    assert figures["Prompt tokens"] == "6,140"
    assert figures["Completion tokens"] == "430"
    assert figures["Generation time"] == "13.3 s"  # 13.35 s
    assert figures["Error rate"] == "12.5%" and figures["Stop rate"] == "12.5%"
    assert figures["Load time after switching"] == "2.0 s"
    assert len(at.get(CHART)) == 4
    per_model = at.dataframe[0].value
    assert list(per_model["model"]) == [LLAMA, "gemma-3-270m", QWEN]
    assert "4 replies probably lost part of their conversation" in at.warning[0].value
    assert [b.label for b in at.get("download_button")] == ["Runs as CSV", "Runs as Parquet"]

    at.multiselect(key="stats-models").set_value([QWEN]).run()
    figures = metrics(at)
    assert (figures["Conversations"], figures["Messages"], figures["Replies"]) == ("1", "3", "2")
    assert list(at.dataframe[0].value["model"]) == [QWEN]

    at.multiselect(key="stats-models").set_value([])
    at.date_input(key="stats-dates").set_value((date(2026, 3, 3), date(2026, 3, 4))).run()
    assert metrics(at)["Replies"] == "4"
    at.multiselect(key="stats-hosts").set_value(["local"])
    at.multiselect(key="stats-models").set_value([QWEN]).run()
    assert not at.exception
    assert "No replies match these filters." in at.info[0].value


def test_new_replies_appear_on_the_next_run(app_env, db_path: Path) -> None:
    import ui
    from chatcore.params import GenerationParams

    at = stats_page(db_path, RUNS)
    assert metrics(at)["Replies"] == "8"
    ui.services().chat.send(None, "Hello", "llama3.2:latest", GenerationParams()).consume()
    at.run()
    assert metrics(at)["Replies"] == "9"


def test_tables_show_counts_as_integers_and_empty_cells_empty(app_env, db_path: Path) -> None:
    """Issue 12, item 10: no "None" in an empty cell, no "4,030.0" for a count of tokens."""
    at = stats_page(db_path, RUNS)
    for table in at.dataframe:
        assert table.proto.HasField("placeholder") and table.proto.placeholder == ""
    per_model = at.dataframe[0].value
    for count in ("runs", "errors", "prompt_tokens", "completion_tokens"):
        assert pd.api.types.is_integer_dtype(per_model[count]), count
    assert list(per_model["prompt_tokens"]) == [4030, 2010, 100]
    assert per_model["thinking_token_share"].isna().all()  # empty, and shown so
