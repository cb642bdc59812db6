"""The suites' REST API: create, run in the background, read the matrix, vote, rank; bad input
is a 422 that stores nothing. Against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeOllama

OWN = f"http://127.0.0.1:{PORT}"
MODELS = ["llama3.2:latest", "qwen3:4b"]


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def count(services: Services, table: str) -> int:
    with services.db.cursor() as cur:
        row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def finished_run(client: TestClient, run_id: int) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = client.get(f"/api/suite-runs/{run_id}").json()
        if body["state"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_a_suite_runs_from_a_script_and_its_votes_rank_the_models(
    client: TestClient, services: Services
) -> None:
    created = client.post(
        "/api/suites",
        json={
            "name": "script",
            "prompts": ["Say hi", {"prompt": "2+2?", "category": "math", "reference": "4"}],
        },
    )
    assert created.status_code == 200
    suite_id = created.json()["id"]
    assert client.get(f"/api/suites/{suite_id}").json()["prompts"][1] == {
        "prompt": "2+2?",
        "category": "math",
        "reference": "4",
    }
    started = client.post(
        f"/api/suites/{suite_id}/runs",
        json={"models": MODELS, "model_params": {"temperature": 0.2, "max_tokens": 50}},
    )
    assert started.status_code == 200
    run = finished_run(client, started.json()["id"])
    assert run["state"] == "done" and len(run["cells"]) == 4
    cell = run["cells"][0]
    assert set(cell) >= {"model", "prompt_index", "run_id", "text", "status", "metrics"}
    assert all(c["status"] == "complete" and c["text"] for c in run["cells"])
    assert cell["metrics"]["completion_tokens"] and "tokens_per_second" in cell["metrics"]

    by_cell = {(c["prompt_index"], c["model"]): c["run_id"] for c in run["cells"]}
    for prompt_index in (0, 1):
        vote = client.post(
            "/api/votes",
            json={
                "a_run_id": by_cell[(prompt_index, "qwen3:4b")],
                "b_run_id": by_cell[(prompt_index, "llama3.2:latest")],
                "outcome": "a",
            },
        )
        assert vote.status_code == 200 and vote.json()["id"]
    board = client.get("/api/leaderboard").json()
    assert [m["model"] for m in board["models"]] == ["qwen3:4b", "llama3.2:latest"]
    top = board["models"][0]
    assert set(top) >= {"model", "rating", "ci_low", "ci_high", "votes"} and top["votes"] == 2
    assert top["median_tokens_per_second"] is not None
    math = client.get("/api/leaderboard", params={"category": "math", "source": "human"})
    assert math.json()["games"] == 1
    assert client.get("/api/leaderboard", params={"source": "judge"}).json()["models"] == []
    assert client.get("/api/leaderboard", params={"suite": suite_id + 1}).json()["games"] == 0

    # re-run one cell: a new answer
    again = client.post(
        f"/api/suite-runs/{run['id']}/rerun",
        json={"cells": [{"prompt_index": 0, "model": "qwen3:4b"}]},
    )
    assert again.status_code == 200
    rerun = finished_run(client, run["id"])
    new = next(c for c in rerun["cells"] if (c["prompt_index"], c["model"]) == (0, "qwen3:4b"))
    assert new["run_id"] != by_cell[(0, "qwen3:4b")] and new["status"] == "complete"
    assert client.post(f"/api/suite-runs/{run['id']}/stop").json()["state"] in ("done", "stopped")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/suites", {"name": "x"}),
        ("/api/suites", {"name": "", "prompts": ["a"]}),
        ("/api/suites", {"name": "x", "prompts": []}),
        ("/api/suites", {"name": "x", "prompts": [{"prompt": "a", "colour": "red"}]}),
        ("/api/suites", {"name": "x", "prompts": [""]}),
        ("/api/suites", {"name": "x", "prompts": ["a"], "extra": 1}),
    ],
)
def test_bad_suites_are_422_and_store_nothing(
    client: TestClient, services: Services, path: str, body: dict
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]
    assert count(services, "suites") == 0


def test_bad_runs_and_votes_are_refused_and_store_nothing(
    client: TestClient, services: Services
) -> None:
    suite_id = client.post("/api/suites", json={"name": "s", "prompts": ["hi"]}).json()["id"]
    for body in (
        {"models": []},
        {"models": MODELS, "model_params": {"temperature": 3}},
        {"models": ["llama3.2:latest", "llama3.2:latest"]},
        {"models": MODELS, "colour": "red"},
    ):
        assert client.post(f"/api/suites/{suite_id}/runs", json=body).status_code == 422
    assert client.post(f"/api/suites/{suite_id}/runs", json={"models": ["nope"]}).status_code == 404
    assert client.post("/api/suites/999/runs", json={"models": MODELS}).status_code == 404
    assert count(services, "suite_runs") == 0
    assert client.get("/api/suite-runs/999").status_code == 404
    for body in (
        {"a_run_id": 1, "b_run_id": 2, "outcome": "maybe"},
        {"a_run_id": 1, "b_run_id": 1, "outcome": "a"},
        {"a_run_id": 1, "b_run_id": 2, "outcome": "a"},  # no such runs
        {"a_run_id": 1, "outcome": "a"},
    ):
        assert client.post("/api/votes", json=body).status_code == 422
    assert count(services, "pair_votes") == 0
    assert client.get("/api/leaderboard", params={"source": "robots"}).status_code == 422


def test_a_judge_is_started_over_the_api_and_ranks_apart(
    client: TestClient, services: Services
) -> None:
    suite_id = client.post("/api/suites", json={"name": "j", "prompts": ["hi"]}).json()["id"]
    run = finished_run(
        client, client.post(f"/api/suites/{suite_id}/runs", json={"models": MODELS}).json()["id"]
    )
    assert (
        client.post(f"/api/suite-runs/{run['id']}/judge", json={"judge": "nope"}).status_code == 404
    )
    started = client.post(f"/api/suite-runs/{run['id']}/judge", json={"judge": "qwen3:4b"})
    assert started.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and count(services, "judge_verdicts") == 0:
        time.sleep(0.05)
    assert count(services, "judge_verdicts") == 1 and count(services, "pair_votes") == 0
