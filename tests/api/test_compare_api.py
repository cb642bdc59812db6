"""POST /api/compare, the Compare page's REST twin, with its vote and leaderboard: over HTTP
against the mounted API, the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from chatcore.storage.votes import StoredVote
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama

OWN = f"http://127.0.0.1:{PORT}"
TABLES = ("compare_rounds", "compare_entries", "votes", "conversations", "messages", "runs")
NOTHING = dict.fromkeys(TABLES, 0)


@pytest.fixture
def phi3(fake_ollama: FakeOllama) -> FakeOllama:
    """A third model, beside the fixture's llama3.2 and qwen3:4b."""
    fake_ollama.models.append(FakeModel("phi3:latest", reply="Phi speaking, briefly."))
    return fake_ollama


@pytest.fixture
def client(services: Services, phi3: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def stored_counts(services: Services) -> dict[str, int]:
    with services.db.cursor() as cur:
        return {
            table: cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in TABLES
        }


def by_entry(answer: dict) -> dict[str, dict]:
    return {entry["entry"]: entry for entry in answer["entries"]}


# --- a round ---


def test_three_models_answer_side_by_side_and_the_round_is_stored(
    client: TestClient, services: Services, phi3: FakeOllama
) -> None:
    answer = client.post(
        "/api/compare",
        json={
            "prompt": "Say hello",
            "models": ["llama3.2", "qwen3:4b", "phi3"],
            "model_params": {"temperature": 0.3, "system_prompt": "Be brief."},
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["prompt"] == "Say hello" and body["blind"] is False
    assert [(e["label"], e["entry"]) for e in body["entries"]] == [
        ("A", "llama3.2"),
        ("B", "qwen3:4b"),
        ("C", "phi3"),
    ]
    replies = {e["model"]: (e["reply"], e["status"], e["error"]) for e in body["entries"]}
    assert replies == {
        "llama3.2:latest": ("Hello there, I am a small model.", "complete", None),
        "qwen3:4b": ("Bonjour from Qwen.", "complete", None),
        "phi3:latest": ("Phi speaking, briefly.", "complete", None),
    }
    assert all(e["metrics"]["completion_tokens"] > 0 for e in body["entries"])
    sent = phi3.chat_requests()
    assert sorted(r["body"]["model"] for r in sent) == [
        "llama3.2:latest",
        "phi3:latest",
        "qwen3:4b",
    ]
    assert all(r["body"]["options"]["temperature"] == 0.3 for r in sent)
    assert all(r["body"]["messages"][0] == {"role": "system", "content": "Be brief."} for r in sent)

    # Each column is an ordinary conversation, as the page's are: History shows it.
    assert len(client.get("/api/conversations").json()) == 3
    for entry in body["entries"]:
        history = client.get(f"/api/history/{entry['conversation_id']}").json()
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "Say hello"),
            ("assistant", entry["reply"]),
        ]
        assert history["messages"][1]["id"] == entry["message_id"]
        assert history["messages"][1]["options"]["temperature"] == 0.3

    # What the page reads back for ?round=<id>.
    stored = services.compare.round(body["round_id"])
    assert stored is not None and stored.prompt == "Say hello" and not stored.blind
    assert [(e.label, e.run.model, e.text) for e in stored.entries] == [
        (e["label"], e["model"], e["reply"]) for e in body["entries"]
    ]
    assert stored_counts(services) == {
        **NOTHING,
        "compare_rounds": 1,
        "compare_entries": 3,
        "conversations": 3,
        "messages": 6,
        "runs": 3,
    }


def test_a_vote_on_the_round_is_stored_once_and_counts_in_the_standings(
    client: TestClient, services: Services
) -> None:
    body = {"prompt": "Which?", "models": ["llama3.2", "qwen3:4b"], "blind": True}
    round_ = client.post("/api/compare", json=body).json()
    labels = {e["model"]: e["label"] for e in round_["entries"]}  # blind: shuffled
    assert round_["blind"] is True and sorted(labels) == ["llama3.2:latest", "qwen3:4b"]
    vote_url = f"/api/compare/{round_['round_id']}/vote"

    not_a_column = client.post(vote_url, json={"outcome": "best", "winner_label": "C"})
    assert not_a_column.status_code == 422 and services.compare.standings() == []

    winner = labels["qwen3:4b"]
    voted = client.post(vote_url, json={"outcome": "best", "winner_label": winner})
    assert voted.status_code == 201, voted.text
    assert voted.json() == {
        "round_id": round_["round_id"],
        "outcome": "best",
        "winner_label": winner,
    }
    assert services.compare.round(round_["round_id"]).vote == StoredVote("best", winner)  # type: ignore[union-attr]

    standings = client.get("/api/compare/standings", params={"blind_only": True}).json()
    assert [(s["model"], s["wins"], s["votes"], s["win_rate"]) for s in standings] == [
        ("qwen3:4b", 1, 1, 1.0),
        ("llama3.2:latest", 0, 1, 0.0),
    ]
    assert standings[0]["rating"] > 1000 > standings[1]["rating"]

    again = client.post(vote_url, json={"outcome": "tie"})
    assert again.status_code == 422 and "already has a vote" in again.json()["detail"]
    assert stored_counts(services)["votes"] == 1
    assert client.post("/api/compare/999/vote", json={"outcome": "tie"}).status_code == 404


def test_a_vote_on_a_round_that_is_not_blind_stays_out_of_the_blind_standings(
    client: TestClient,
) -> None:
    round_ = client.post("/api/compare", json={"prompt": "Hi", "models": ["llama3.2", "phi3"]})
    tie = client.post(f"/api/compare/{round_.json()['round_id']}/vote", json={"outcome": "tie"})
    assert tie.status_code == 201 and tie.json()["winner_label"] is None
    assert client.get("/api/compare/standings", params={"blind_only": True}).json() == []
    everything = client.get("/api/compare/standings").json()
    assert sorted((s["model"], s["votes"]) for s in everything) == [
        ("llama3.2:latest", 1),
        ("phi3:latest", 1),
    ]


def test_models_working_together_take_one_column(client: TestClient, services: Services) -> None:
    fusion = "fusion(llama3.2 + phi3 -> qwen3:4b)"
    answer = client.post("/api/compare", json={"prompt": "Hi", "models": [fusion, "phi3"]})
    assert answer.status_code == 200, answer.text
    entries = by_entry(answer.json())
    assert entries[fusion]["status"] == "complete" and entries[fusion]["model"] == "qwen3:4b"
    assert entries[fusion]["reply"] == "Bonjour from Qwen."
    assert entries["phi3"]["reply"] == "Phi speaking, briefly."
    stored = services.compare.round(answer.json()["round_id"])
    assert stored is not None and [e.entry for e in stored.entries] == [fusion, "phi3:latest"]


# --- failures: each column keeps its own ---


def test_a_model_failing_midway_is_stored_as_error_and_the_other_is_complete(
    client: TestClient, services: Services, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    answer = client.post("/api/compare", json={"prompt": "Hi", "models": ["flaky", "llama3.2"]})
    assert answer.status_code == 200, answer.text
    entries = by_entry(answer.json())
    assert entries["flaky"]["status"] == "error" and entries["flaky"]["reply"] == "one"
    assert "error was encountered" in entries["flaky"]["error"]
    assert entries["llama3.2"]["status"] == "complete"
    assert entries["llama3.2"]["reply"] == "Hello there, I am a small model."

    history = client.get(f"/api/history/{entries['flaky']['conversation_id']}").json()
    assert (history["messages"][1]["status"], history["messages"][1]["content"]) == ("error", "one")
    stored = services.compare.round(answer.json()["round_id"])
    assert stored is not None
    assert [(e.text, e.run.status) for e in stored.entries] == [
        ("one", "error"),
        ("Hello there, I am a small model.", "complete"),
    ]
    # As on the page: a failed answer takes no part in a vote, so one answer is nothing to judge.
    vote = client.post(
        f"/api/compare/{stored.id}/vote", json={"outcome": "best", "winner_label": "B"}
    )
    assert vote.status_code == 422 and "at least two answers" in vote.json()["detail"]


def test_every_model_failing_is_502_with_each_stored(
    client: TestClient, services: Services, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models += [
        FakeModel("flaky:latest", reply="one two", fail_after=1),
        FakeModel("shaky:latest", reply="alpha beta", fail_after=1),
    ]
    answer = client.post("/api/compare", json={"prompt": "Hi", "models": ["flaky", "shaky"]})
    assert answer.status_code == 502
    assert [(e["reply"], e["status"]) for e in answer.json()["entries"]] == [
        ("one", "error"),
        ("alpha", "error"),
    ]
    assert stored_counts(services)["compare_entries"] == 2


# --- refusals: each says why, and none stores anything ---


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"prompt": "Hi", "models": ["llama3.2"]}, 422, "models"),
        ({"prompt": "Hi", "models": ["llama3.2", "qwen3:4b", "phi3", "a", "b"]}, 422, "models"),
        ({"prompt": "Hi", "models": ["llama3.2", "phi3", "llama3.2:latest"]}, 422, "once"),
        ({"prompt": "Hi", "models": ["llama3.2", "llama3.2"]}, 422, "different models"),
        ({"prompt": "Hi", "models": ["llama3.2", "mistral"]}, 404, "Model 'mistral' was not"),
        (
            {"prompt": "Hi", "models": ["fusion(llama3.2 + nope -> phi3)", "phi3"]},
            404,
            "Model 'nope' was not",
        ),
        ({"prompt": "Hi", "models": ["fusion(llama3.2)", "phi3"]}, 422, "fusion(model + model"),
        (
            {"prompt": "Hi", "models": ["llama3.2", "phi3"], "model_params": {"temperature": 1.5}},
            422,
            "model_params.temperature",
        ),
        (
            {"prompt": "Hi", "models": ["llama3.2", "phi3"], "model_params": {"model": "phi3"}},
            422,
            "model_params.model",
        ),
        ({"prompt": "   ", "models": ["llama3.2", "phi3"]}, 422, "message"),
        ({"models": ["llama3.2", "phi3"]}, 422, "prompt"),
        ({"prompt": "Hi", "models": ["llama3.2", "phi3"], "colour": "blue"}, 422, "colour"),
    ],
)
def test_bad_input_is_refused_naming_what_and_stores_nothing(
    client: TestClient,
    services: Services,
    phi3: FakeOllama,
    body: dict,
    status: int,
    named: str,
) -> None:
    answer = client.post("/api/compare", json=body)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["detail"]
    assert stored_counts(services) == NOTHING
    assert phi3.chat_requests() == []  # no model was asked either
