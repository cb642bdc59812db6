"""The Suites page under AppTest: type a suite, run it, read the matrix, vote blind, read the
leaderboard. Against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from chatcore.services import shared_services
from testkit.apptest import new_app

REPLIES = {"llama3.2:latest": "Hello there, I am a small model.", "qwen3:4b": "Bonjour from Qwen."}


def suites_page() -> AppTest:
    at = new_app().run()
    at.switch_page("pages/suites.py").run()
    assert not at.exception, at.exception
    return at


def wait_for_the_run(at: AppTest) -> AppTest:
    run_id = at.session_state["suite_run"]
    shared_services().suites.wait(run_id, 20)
    return at.run()


def test_a_typed_suite_runs_into_the_matrix_and_a_blind_vote_ranks(app_env) -> None:
    at = suites_page()
    assert any("Create a suite" in i.value for i in at.info)
    at.text_input(key="suite_name").input("Greetings")
    at.text_area(key="suite_prompts").input("Say hi\nSay bye")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert at.selectbox[0].format_func(at.selectbox[0].value) == "Greetings (2 prompts)"

    assert at.multiselect(key="suite_models").value == ["llama3.2:latest", "qwen3:4b"]
    at.button(key="suite_start").click().run()
    assert not at.exception, at.exception
    at = wait_for_the_run(at)
    assert not at.exception, at.exception
    matrix = at.dataframe[0].value
    assert list(matrix.columns) == ["Prompt", "llama3.2:latest", "qwen3:4b"]
    assert list(matrix["Prompt"]) == ["Say hi", "Say bye"]
    assert all(REPLIES["qwen3:4b"] in cell and "tok/s" in cell for cell in matrix["qwen3:4b"])
    assert any("finished · 4 of 4 cells answered" in c.value for c in at.caption)

    answers = {h.value for h in at.subheader}
    assert {"Answer A", "Answer B"} <= answers
    at.button(key="suite-vote-a").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Vote stored. A was ")
    board = at.dataframe[-1].value
    assert list(board["Votes"]) == [1, 1]
    assert set(board["Model"]) == set(REPLIES)
    assert board["Rating"].iloc[0] > board["Rating"].iloc[1]
    time.sleep(0)  # nothing left streaming
