"""Prompt suites: runs through the one send path, host capacity, stop, re-run, resume after a
kill -9, votes and the leaderboard, against loopback Ollama servers and a real DuckDB file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.errors import InvalidInput, ModelNotFound, NotFound
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.suites import (
    DEFAULT_SEED,
    prompts_from_csv,
    prompts_from_jsonl,
    prompts_from_lines,
)
from testkit.fake_ollama import FakeModel, FakeOllama

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["alpha:latest", "beta:latest"]


def echo_models(delay: float = 0.0) -> list[FakeModel]:
    return [FakeModel(name, echo=True, token_delay=delay) for name in MODELS]


@pytest.fixture
def echo_server() -> Iterator[FakeOllama]:
    server = FakeOllama(echo_models(0.002)).start()
    yield server
    server.stop()


@pytest.fixture
def suite_services(echo_server: FakeOllama, db_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(ollama_host=echo_server.url, db_path=db_path, port=0))
    yield opened
    opened.close()


def table_count(services: Services, table: str) -> int:
    with services.db.cursor() as cur:
        row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


# --- prompts ---


def test_prompts_from_csv_jsonl_and_lines() -> None:
    csv_text = 'prompt,category,reference\n"Hello, you",greeting,Hi\nSum 2+2,math,4\n\n'
    assert [(p.prompt, p.category, p.reference) for p in prompts_from_csv(csv_text)] == [
        ("Hello, you", "greeting", "Hi"),
        ("Sum 2+2", "math", "4"),
    ]
    assert [p.prompt for p in prompts_from_csv("one\ntwo\n")] == ["one", "two"]
    jsonl = '"plain"\n{"prompt": "p2", "category": "c"}\n'
    assert [(p.prompt, p.category) for p in prompts_from_jsonl(jsonl)] == [
        ("plain", None),
        ("p2", "c"),
    ]
    assert [p.prompt for p in prompts_from_lines("a\n\n b \n")] == ["a", " b "]
    with pytest.raises(InvalidInput, match="Line 2 is not JSON"):
        prompts_from_jsonl('"ok"\n{oops\n')
    with pytest.raises(InvalidInput, match="unknown fields"):
        prompts_from_jsonl('{"prompt": "x", "colour": "red"}')
    with pytest.raises(InvalidInput, match="empty"):
        prompts_from_csv("prompt,category\n,math\n")


def test_bad_suites_and_runs_store_nothing(suite_services: Services) -> None:
    suites = suite_services.suites
    for name, prompts in (("", ["x"]), ("ok", []), ("ok", [""]), ("ok", [{"text": "x"}])):
        with pytest.raises(InvalidInput):
            suites.create_suite(name, prompts)
    assert table_count(suite_services, "suites") == 0
    suite_id = suites.create_suite("ok", ["hi"])
    with pytest.raises(ModelNotFound):
        suites.start_run(suite_id, ["nope:latest"])
    with pytest.raises(InvalidInput):
        suites.start_run(suite_id, ["alpha:latest", "alpha:latest"])
    with pytest.raises(NotFound):
        suites.start_run(suite_id + 99, MODELS)
    assert table_count(suite_services, "suite_runs") == 0


# --- runs ---


def test_a_run_answers_every_cell_through_the_send_path(suite_services: Services) -> None:
    suites = suite_services.suites
    suite_id = suites.create_suite(
        "greetings", ["Hello", {"prompt": "Bonjour", "category": "fr", "reference": "Salut"}]
    )
    presets = [GenerationParams(temperature=0.1), GenerationParams(temperature=0.9)]
    run_id = suites.start_run(suite_id, MODELS, presets=presets)
    view = suites.wait(run_id, timeout=30)
    assert view.state == "done"
    assert len(view.cells) == 2 * 2 * 2
    for cell in view.cells:
        prompt = view.suite.prompts[cell.prompt_index].prompt
        assert cell.status == "complete" and cell.text == f"You said: {prompt}"
        assert cell.metrics.completion_tokens and cell.run_id is not None
        # an ordinary conversation: History and Stats read it
        messages = suite_services.chat.messages(cell.conversation_id or "")
        assert [(m.role, m.content) for m in messages] == [
            ("user", prompt),
            ("assistant", cell.text),
        ]
        assert messages[1].run is not None
        assert messages[1].run.options["seed"] == DEFAULT_SEED
        assert messages[1].run.options["temperature"] == (0.1, 0.9)[cell.preset_index]
    assert view.presets[1].temperature == 0.9 and view.presets[1].seed == DEFAULT_SEED


def test_cells_stream_into_the_matrix_while_the_run_goes(db_path: Path) -> None:
    server = FakeOllama([FakeModel(m, reply="a b c d e f g h", token_delay=0.1) for m in MODELS])
    server.start()
    services = open_services(Settings(ollama_host=server.url, db_path=db_path, port=0))
    try:
        suite_id = services.suites.create_suite("live", ["one"])
        run_id = services.suites.start_run(suite_id, MODELS[:1])
        partial = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not partial:
            cell = services.suites.run(run_id).cells[0]
            if cell.status == "streaming" and cell.text:
                partial = cell.text
            time.sleep(0.05)
        assert partial and "a b c d e f g h".startswith(partial) and partial != "a b c d e f g h"
        assert services.suites.wait(run_id, 10).cells[0].text == "a b c d e f g h"
    finally:
        services.close()
        server.stop()


def test_a_run_fills_each_host_up_to_its_capacity_never_more(db_path: Path) -> None:
    first = FakeOllama(echo_models(0.02)).start()
    second = FakeOllama(echo_models(0.02)).start()
    settings = Settings(first.url, db_path, 0, ollama_hosts=(second.url,))
    services = open_services(settings)
    most: dict[str, int] = {first.url: 0, second.url: 0}
    both_busy = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = {h: services.registry.in_flight(h) for h in most}
            for host, count in now.items():
                most[host] = max(most[host], count)
            if all(now.values()):
                both_busy.set()
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        suite_id = services.suites.create_suite("spread", [f"p{i}" for i in range(6)])
        view = services.suites.wait(services.suites.start_run(suite_id, MODELS), 30)
        assert all(c.status == "complete" for c in view.cells)
    finally:
        done.set()
        watcher.join()
        services.close()
        first.stop()
        second.stop()
    assert most == {first.url: 1, second.url: 1}
    assert both_busy.is_set()
    assert len(first.chat_requests()) + len(second.chat_requests()) == 12


def test_a_missing_model_fails_its_cells_and_the_others_run(
    suite_services: Services, echo_server: FakeOllama
) -> None:
    suite_id = suite_services.suites.create_suite("gone", ["hi"])
    run_id = suite_services.suites.start_run(suite_id, MODELS)
    suite_services.suites.wait(run_id, 10)
    echo_server.models = echo_server.models[:1]  # beta deleted behind our back
    suite_services.registry.list_models()
    suite_services.suites.rerun(run_id, [(0, "beta:latest", 0)])
    view = suite_services.suites.wait(run_id, 10)
    beta = view.cell(0, "beta:latest")
    assert beta is not None and beta.status == "error" and beta.run_id is None
    assert "not found" in (beta.error or "")
    alpha = view.cell(0, "alpha:latest")
    assert alpha is not None and alpha.status == "complete"


def test_stop_then_resume_sends_only_the_missing_cells(db_path: Path) -> None:
    server = FakeOllama([FakeModel(m, reply="x " * 10, token_delay=0.05) for m in MODELS]).start()
    services = open_services(Settings(ollama_host=server.url, db_path=db_path, port=0))
    try:
        suites = services.suites
        suite_id = suites.create_suite("stop", [f"p{i}" for i in range(4)])
        run_id = suites.start_run(suite_id, MODELS)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(c.status == "complete" for c in suites.run(run_id).cells):
                break
            time.sleep(0.02)
        suites.stop(run_id)
        stopped = suites.run(run_id)
        assert stopped.state == "stopped"
        finished = {
            (c.prompt_index, c.model): c.run_id for c in stopped.cells if c.status == "complete"
        }
        assert 0 < len(finished) < 8
        assert any(c.status == "waiting" for c in stopped.cells)
        sent = len(server.chat_requests())
        suites.rerun(run_id)  # resume: the missing cells only
        resumed = suites.wait(run_id, 30)
        assert resumed.state == "done"
        assert all(c.status == "complete" for c in resumed.cells)
        for cell in resumed.cells:  # finished cells kept their answer
            if (cell.prompt_index, cell.model) in finished:
                assert cell.run_id == finished[(cell.prompt_index, cell.model)]
        assert len(server.chat_requests()) - sent == 8 - len(finished)
        # re-run one chosen cell: a new answer, the old one stays in History
        old = resumed.cell(0, "alpha:latest")
        suites.rerun(run_id, [(0, "alpha:latest", 0)])
        again = suites.wait(run_id, 10).cell(0, "alpha:latest")
        assert old is not None and again is not None and again.run_id != old.run_id
        assert services.chat.messages(old.conversation_id or "")[1].content == old.text
        with pytest.raises(InvalidInput):
            suites.rerun(run_id, [(9, "alpha:latest", 0)])
    finally:
        services.close()
        server.stop()


def test_a_run_killed_mid_way_resumes_without_repeating_finished_cells(db_path: Path) -> None:
    server = FakeOllama(
        [FakeModel(m, reply="one two three four", token_delay=0.05) for m in MODELS]
    ).start()
    prompts = 5
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testkit.suite_process",
            str(db_path),
            server.url,
            str(prompts),
            *MODELS,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "EMBEDDED": "0"},
    )
    try:
        assert child.stdout is not None
        run_id = int(child.stdout.readline())
        deadline = time.monotonic() + 20
        while len(server.chat_requests()) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.08)  # the fifth reply is mid-stream
        child.send_signal(signal.SIGKILL)
        child.wait()
        sent_before = len(server.chat_requests())
        assert 5 <= sent_before < prompts * 2

        services = open_services(Settings(ollama_host=server.url, db_path=db_path, port=0))
        try:
            view = services.suites.wait(run_id, 30)
            assert view.state == "done"
            assert all(c.status == "complete" for c in view.cells)
            with services.db.cursor() as cur:
                complete = cur.execute(
                    """
                    SELECT u.content, r.model, count(*) FROM runs r
                    JOIN messages u ON u.conversation_id = r.conversation_id AND u.role = 'user'
                    WHERE r.status = 'complete' GROUP BY ALL
                    """
                ).fetchall()
                interrupted = cur.execute(
                    "SELECT count(*) FROM runs WHERE error LIKE 'Interrupted%'"
                ).fetchone()
        finally:
            services.close()
    finally:
        child.kill()
        server.stop()
    assert len(complete) == prompts * 2 and all(count == 1 for *_, count in complete)
    assert interrupted is not None and interrupted[0] <= 1  # one host, one reply at a time
    # every cell sent once, plus the one cut off by the kill at most
    assert len(server.chat_requests()) <= prompts * 2 + 1


# --- votes and the leaderboard ---


def finished_suite(services: Services, prompts: list[str]) -> dict[tuple[int, str], int]:
    suite_id = services.suites.create_suite("board", prompts)
    view = services.suites.wait(services.suites.start_run(suite_id, MODELS), 30)
    return {(c.prompt_index, c.model): c.run_id or 0 for c in view.cells}


def test_votes_feed_a_bradley_terry_leaderboard(suite_services: Services) -> None:
    runs = finished_suite(suite_services, [f"q{i}" for i in range(4)])
    suites = suite_services.suites
    for i in range(3):
        suites.vote(runs[(i, "alpha:latest")], runs[(i, "beta:latest")], "a")
    suites.vote(runs[(3, "beta:latest")], runs[(3, "alpha:latest")], "tie")
    board = suites.leaderboard(rounds=100)
    assert [r.model for r in board.rows] == ["alpha:latest", "beta:latest"]
    alpha, beta = board.rows
    # alpha scored 3.5 of 4: odds of 7 to 1 -> 400·log10(7) points apart
    assert alpha.rating - beta.rating == pytest.approx(338.04, abs=0.05)
    assert alpha.votes == beta.votes == 4 and board.games == 4
    assert alpha.ci_low <= alpha.rating <= alpha.ci_high
    assert alpha.elo > 1000 > beta.elo
    assert alpha.median_tokens_per_second and alpha.median_seconds is not None
    assert suites.leaderboard(source="judge").rows == []


def test_bad_votes_are_refused_and_store_nothing(suite_services: Services) -> None:
    runs = finished_suite(suite_services, ["q0", "q1"])
    suites = suite_services.suites
    a, b = runs[(0, "alpha:latest")], runs[(0, "beta:latest")]
    for args, message in (
        ((a, b, "maybe"), "outcome"),
        ((a, a, "a"), "different answers"),
        ((a, 9999, "a"), "does not exist"),
        ((a, runs[(1, "beta:latest")], "a"), "same prompt"),
        ((a, runs[(1, "alpha:latest")], "a"), "two different models"),
    ):
        with pytest.raises(InvalidInput, match=message):
            suites.vote(*args)
    assert table_count(suite_services, "pair_votes") == 0


def test_leaderboard_filters_by_category_suite_and_date(suite_services: Services) -> None:
    suites = suite_services.suites
    suite_id = suites.create_suite(
        "cats", [{"prompt": "m1", "category": "math"}, {"prompt": "w1", "category": "writing"}]
    )
    view = suites.wait(suites.start_run(suite_id, MODELS), 30)
    cell = {(c.prompt_index, c.model): c.run_id or 0 for c in view.cells}
    suites.vote(cell[(0, "alpha:latest")], cell[(0, "beta:latest")], "a")
    suites.vote(cell[(1, "alpha:latest")], cell[(1, "beta:latest")], "b")
    math = suites.leaderboard(category="math", rounds=10)
    assert math.games == 1 and math.rows[0].model == "alpha:latest"
    writing = suites.leaderboard(category="writing", rounds=10)
    assert writing.rows[0].model == "beta:latest"
    assert suites.leaderboard(suite_id=suite_id, rounds=10).games == 2
    assert suites.leaderboard(suite_id=suite_id + 1, rounds=10).games == 0
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(hours=1)
    assert suites.leaderboard(since=later, rounds=10).games == 0
    assert suites.leaderboard(until=later, rounds=10).games == 2
    assert suites.categories() == ["math", "writing"]
    with pytest.raises(InvalidInput):
        suites.leaderboard(source="robots")


def test_blind_pairs_come_from_one_prompt_and_skip_voted_ones(suite_services: Services) -> None:
    import random

    runs = finished_suite(suite_services, ["q0", "q1"])
    suites = suite_services.suites
    run_id = suites.runs()[0].id
    seen = set()
    for _ in range(2):
        pair = suites.next_pair(run_id, random.Random(1))
        assert pair is not None
        a, b = pair
        assert a.prompt_index == b.prompt_index and a.model != b.model
        seen.add(a.prompt_index)
        suites.vote(a.run_id or 0, b.run_id or 0, "tie")
    assert seen == {0, 1} and suites.next_pair(run_id) is None
    assert len(runs) == 4


# --- the judge ---


def test_the_judge_counts_a_verdict_only_when_both_orders_agree() -> None:
    from chatcore.suites import agreed_outcome, judge_prompt, parse_verdict

    assert parse_verdict("B") == "b" and parse_verdict("Verdict: both_bad.") == "both_bad"
    assert parse_verdict("**TIE**") == "tie" and parse_verdict("I cannot say") is None
    assert parse_verdict("A is better") == "a"
    # asked (a, b) then (b, a): "A" then "B" both name the same answer
    assert agreed_outcome("a", "b") == "a"
    assert agreed_outcome("b", "a") == "b"
    assert agreed_outcome("a", "a") is None  # it prefers whatever comes first
    assert agreed_outcome("tie", "tie") == "tie"
    assert agreed_outcome("both_bad", "both_bad") == "both_bad"
    assert agreed_outcome(None, "b") is None and agreed_outcome("tie", "a") is None
    text = judge_prompt("Be fair.", "2+2?", "4", "four", "five")
    assert (
        text.index("Be fair.") < text.index("Reference answer:\n4") < text.index("Answer A:\nfour")
    )
    assert text.index("Answer A:\nfour") < text.index("Answer B:\nfive")


def test_a_judge_runs_after_the_suite_and_stays_apart_from_human_votes(db_path: Path) -> None:
    server = FakeOllama(
        [
            *echo_models(),
            FakeModel("fair:latest", reply="TIE"),
            FakeModel("biased:latest", reply="A"),  # always the first answer shown
        ]
    ).start()
    services = open_services(Settings(ollama_host=server.url, db_path=db_path, port=0))
    try:
        suites = services.suites
        suite_id = suites.create_suite("judged", ["q0", "q1"])
        run_id = suites.start_run(suite_id, MODELS, judge="fair:latest")
        view = suites.wait(run_id, 30)
        assert view.state == "done" and view.judge == "fair:latest"
        with services.db.cursor() as cur:
            verdicts = cur.execute(
                "SELECT judge_model, first_verdict, second_verdict, outcome, rubric "
                "FROM judge_verdicts"
            ).fetchall()
        assert len(verdicts) == 2
        assert all(v[:4] == ("fair:latest", "tie", "tie", "tie") for v in verdicts)
        assert all("length is not a merit" in v[4] for v in verdicts)
        assert table_count(services, "pair_votes") == 0  # never mixed into human votes
        assert suites.leaderboard(source="judge", rounds=10).games == 2
        assert suites.leaderboard(source="human", rounds=10).games == 0

        assert suites.judge_run(run_id, "biased:latest") == 2
        assert suites.judge_run(run_id, "biased:latest") == 0  # judged pairs are not asked again
        with services.db.cursor() as cur:
            biased = cur.execute(
                "SELECT first_verdict, second_verdict, outcome FROM judge_verdicts "
                "WHERE judge_model = 'biased:latest'"
            ).fetchall()
        assert biased == [("a", "a", None)] * 2  # position bias: no verdict counted
        assert suites.leaderboard(source="judge", rounds=10).games == 2

        cell = {(c.prompt_index, c.model): c.run_id or 0 for c in view.cells}
        suites.vote(cell[(0, "alpha:latest")], cell[(0, "beta:latest")], "tie")
        suites.vote(cell[(1, "beta:latest")], cell[(1, "alpha:latest")], "a")
        assert suites.judge_agreement() == (1, 2)
        assert suites.leaderboard(source="both", rounds=10).games == 4
    finally:
        services.close()
        server.stop()


# --- export and import ---


def test_compare_rounds_suites_votes_and_verdicts_travel_in_the_json_export(
    db_path: Path, tmp_path: Path
) -> None:
    import json

    server = FakeOllama([*echo_models(), FakeModel("fair:latest", reply="TIE")]).start()
    source = open_services(Settings(ollama_host=server.url, db_path=db_path, port=0))
    target = open_services(Settings(ollama_host=server.url, db_path=tmp_path / "b.duckdb", port=0))
    try:
        live = source.compare.start("Compare me", MODELS, GenerationParams(), blind=True)
        live.wait()
        source.compare.vote(live.id, "best", "A")
        suite_id = source.suites.create_suite(
            "travels", [{"prompt": "q0", "category": "c", "reference": "r"}, "q1"]
        )
        run_id = source.suites.start_run(suite_id, MODELS, judge="fair:latest")
        view = source.suites.wait(run_id, 30)
        cell = {(c.prompt_index, c.model): c.run_id or 0 for c in view.cells}
        source.suites.vote(cell[(0, "alpha:latest")], cell[(0, "beta:latest")], "a")
        before = source.suites.leaderboard(rounds=10)

        data = source.transfer.export_json()
        evaluation = json.loads(data)["evaluation"]
        assert {k: len(v) for k, v in evaluation.items()} == {
            "compare_rounds": 1,
            "compare_entries": 2,
            "votes": 1,
            "suites": 1,
            "suite_prompts": 2,
            "suite_runs": 1,
            "suite_cells": 4,
            "pair_votes": 1,
            "judge_verdicts": 2,
            "collaboration_steps": 0,
        }
        target.transfer.import_json(data)
        after = target.suites.leaderboard(rounds=10)
        assert [(r.model, round(r.rating, 6), r.votes) for r in after.rows] == [
            (r.model, round(r.rating, 6), r.votes) for r in before.rows
        ]
        assert after.games == before.games == 4  # compare vote, human vote, two verdicts
        imported = target.suites.runs()[0]
        assert imported.state == "done"
        copy = target.suites.run(imported.id)
        assert [(c.model, c.text, c.status) for c in copy.cells] == [
            (c.model, c.text, c.status) for c in view.cells
        ]
        assert copy.suite.prompts[0].reference == "r"
        stored = target.compare.round(1)  # the first round of a fresh database
        assert stored is not None and stored.vote is not None

        target.transfer.import_json(data)  # again: conversations and suites already here
        assert len(target.suites.suites()) == 1
        assert target.suites.leaderboard(rounds=10).games == 4
    finally:
        source.close()
        target.close()
        server.stop()


# --- collaboration ---


def test_collaborations_are_spelled_like_models() -> None:
    from chatcore.collaboration import CRITIQUE, FUSION, parse_collaboration

    assert parse_collaboration("llama3.2:latest") is None
    critique = parse_collaboration("critique(a:latest -> b:1b -> c)")
    assert critique is not None and critique.pattern == CRITIQUE
    assert (critique.first, critique.last) == (("a:latest", "b:1b"), "c")
    own = parse_collaboration("critique( a -> b )")
    assert own is not None and own.last == "a" and own.name == "critique(a -> b -> a)"
    fusion = parse_collaboration("fusion(a + b + c -> s)")
    assert fusion is not None and fusion.pattern == FUSION
    assert fusion.first == ("a", "b", "c") and fusion.models == ["a", "b", "c", "s"]
    for bad in ("fusion(a -> s)", "fusion(a + b)", "critique(a)", "critique(a -> -> b)"):
        with pytest.raises(InvalidInput):
            parse_collaboration(bad)


def test_collaborations_run_as_suite_entries_with_every_step_stored(
    suite_services: Services,
) -> None:
    suites = suite_services.suites
    critique = "critique(alpha:latest -> beta:latest)"
    fusion = "fusion(alpha:latest + beta:latest -> beta:latest)"
    with pytest.raises(ModelNotFound):
        suites.start_run(suites.create_suite("x", ["q"]), ["fusion(alpha + nope -> alpha)"])
    suite_id = suites.create_suite("together", ["Name a colour"])
    view = suites.wait(suites.start_run(suite_id, ["alpha:latest", critique, fusion]), 30)
    assert view.state == "done"
    assert view.models == [
        "alpha:latest",
        "critique(alpha:latest -> beta:latest -> alpha:latest)",
        fusion,
    ]
    single, revised, fused = view.cells
    assert all(c.status == "complete" for c in view.cells)
    assert revised.text.startswith("You said: Improve the draft answer")
    assert "Critique:\nYou said: Here is a question and a draft answer." in revised.text
    assert fused.text.startswith("You said: Several assistants answered")
    assert "Answer 1:\nYou said: Name a colour" in fused.text
    steps = suites.collaboration_steps(revised.run_id or 0)
    assert [(role, model) for role, model, _ in steps] == [
        ("draft", "alpha:latest"),
        ("critique", "beta:latest"),
        ("revise", "alpha:latest"),
    ]
    assert steps[-1][2] == revised.run_id
    fusion_steps = suites.collaboration_steps(fused.run_id or 0)
    assert sorted((role, model) for role, model, _ in fusion_steps) == [
        ("answer", "alpha:latest"),
        ("answer", "beta:latest"),
        ("synthesis", "beta:latest"),
    ]
    # every step is an ordinary conversation: History and Stats see them
    for _, _, run_id in steps + fusion_steps:
        with suite_services.db.cursor() as cur:
            row = cur.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
        assert row == ("complete",)

    # ranked against a single model, under its own name
    suites.vote(fused.run_id or 0, single.run_id or 0, "a")
    suites.vote(revised.run_id or 0, single.run_id or 0, "tie")
    board = suites.leaderboard(rounds=10)
    assert board.rows[0].model == fusion
    assert {r.model for r in board.rows} == {single.model, revised.model, fused.model}
    fused_row = next(r for r in board.rows if r.model == fusion)
    assert fused_row.median_seconds is not None


def test_deleting_a_suite_answer_takes_its_votes_and_cell(suite_services: Services) -> None:
    runs = finished_suite(suite_services, ["q0"])
    suites = suite_services.suites
    alpha, beta = runs[(0, "alpha:latest")], runs[(0, "beta:latest")]
    suites.vote(alpha, beta, "a")
    view = suites.runs()[0]
    gone = next(c for c in suites.run(view.id).cells if c.model == "alpha:latest")
    assert suite_services.history.delete([gone.conversation_id or ""]) == 1
    assert table_count(suite_services, "pair_votes") == 0
    after = suites.run(view.id).cell(0, "alpha:latest")
    assert after is not None and after.status == "waiting"
    assert suites.leaderboard(rounds=10).games == 0


def test_presets_of_one_model_rank_as_entries_of_their_own(suite_services: Services) -> None:
    """A run of one model at two temperatures: each preset is an entry, pairs and votes included."""
    suites = suite_services.suites
    suite_id = suites.create_suite("warm or cold", ["q0", "q1"])
    presets = [GenerationParams(temperature=0.1), GenerationParams(temperature=0.9)]
    view = suites.wait(suites.start_run(suite_id, ["alpha:latest"], presets=presets), 30)
    pair = suites.next_pair(view.id)
    assert pair is not None
    a, b = pair
    assert a.model == b.model and a.prompt_index == b.prompt_index
    assert a.preset_index != b.preset_index
    cold = {c.prompt_index: c.run_id or 0 for c in view.cells if c.preset_index == 0}
    warm = {c.prompt_index: c.run_id or 0 for c in view.cells if c.preset_index == 1}
    suites.vote(cold[0], warm[0], "a")
    suites.vote(warm[1], cold[1], "b")
    board = suites.leaderboard(rounds=10)
    assert [r.model for r in board.rows] == [
        "alpha:latest [t 0.1 · top p 0.9]",
        "alpha:latest [t 0.9 · top p 0.9]",
    ]
    assert board.games == 2 and all(r.median_seconds is not None for r in board.rows)
