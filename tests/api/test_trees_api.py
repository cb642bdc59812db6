"""The REST API's trees: POST /api/chat with parent_id branches, GET /api/history/{id} answers the
open branch or, with ?tree=true, every message with its parent_id. Over HTTP against the ASGI app
with a real DuckDB file and the loopback Ollama server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted

MODEL = {"model": "llama3.2"}


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=f"http://127.0.0.1:{PORT}") as test_client:
        yield test_client


def chat(client: TestClient, message: str, **extra: object) -> dict:
    answer = client.post(
        "/api/chat",
        json={"message": message, "conversation_id": "t", "model_params": MODEL, **extra},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def message_counts(services: Services) -> tuple[int, int]:
    with services.db.cursor() as cur:
        row = cur.execute("SELECT count(*), (SELECT count(*) FROM runs) FROM messages").fetchone()
    return row[0], row[1]


def test_parent_id_branches_and_history_returns_the_open_branch_or_the_tree(
    client: TestClient,
) -> None:
    chat(client, "one")
    chat(client, "two")
    opened = client.get("/api/history/t").json()["messages"]
    first_reply = opened[1]["id"]
    assert [m["parent_id"] for m in opened] == [None, *[m["id"] for m in opened[:-1]]]

    branched = chat(client, "two, again", parent_id=first_reply)
    opened = client.get("/api/history/t").json()["messages"]
    assert [m["content"] for m in opened][::2] == ["one", "two, again"]
    assert opened[-1]["id"] == branched["message_id"]

    tree = client.get("/api/history/t", params={"tree": "true"}).json()["messages"]
    assert len(tree) == 6
    assert sorted(m["content"] for m in tree if m["parent_id"] == first_reply) == [
        "two",
        "two, again",
    ]

    chat(client, "three")  # omitted: after the open branch's last message
    opened = client.get("/api/history/t").json()["messages"]
    assert [m["content"] for m in opened][::2] == ["one", "two, again", "three"]


def test_parent_id_zero_starts_a_new_first_message(client: TestClient) -> None:
    chat(client, "one")
    chat(client, "uno", parent_id=0)
    opened = client.get("/api/history/t").json()["messages"]
    assert [m["content"] for m in opened][::2] == ["uno"] and opened[0]["parent_id"] is None


def test_an_unknown_or_foreign_parent_id_is_422_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    chat(client, "one")
    other = client.post(
        "/api/chat", json={"message": "hi", "conversation_id": "other", "model_params": MODEL}
    ).json()
    before = message_counts(services)
    for parent_id in (other["message_id"], 987654321, "abc"):
        for conversation in ("t", "brand-new"):
            answer = client.post(
                "/api/chat",
                json={
                    "message": "branch",
                    "conversation_id": conversation,
                    "model_params": MODEL,
                    "parent_id": parent_id,
                },
            )
            assert answer.status_code == 422, answer.text
    assert message_counts(services) == before
    assert client.get("/api/history/brand-new").status_code == 404


def test_open_a_branch_and_fork_over_the_api(client: TestClient) -> None:
    chat(client, "one")
    chat(client, "two")
    first_reply = client.get("/api/history/t").json()["messages"][1]["id"]
    chat(client, "two, again", parent_id=first_reply)
    tree = client.get("/api/history/t", params={"tree": "true"}).json()["messages"]
    two = next(m["id"] for m in tree if m["content"] == "two")

    opened = client.post("/api/history/t/open", json={"message_id": two})
    assert opened.status_code == 200
    assert [m["content"] for m in opened.json()["messages"]][::2] == ["one", "two"]
    assert [m["content"] for m in client.get("/api/history/t").json()["messages"]][2] == "two"

    forked = client.post("/api/history/t/fork", json={"message_id": first_reply})
    assert forked.status_code == 201
    body = forked.json()
    assert body["conversation"]["id"] != "t" and len(body["messages"]) == 2
    named = client.post("/api/history/t/fork", json={"message_id": two, "conversation_id": "f"})
    assert named.status_code == 201 and named.json()["conversation"]["title"] == "one (fork)"

    assert client.post("/api/history/t/open", json={"message_id": 10**9}).status_code == 404
    assert client.post("/api/history/t/fork", json={"message_id": 10**9}).status_code == 404
    assert (
        client.post(
            "/api/history/t/fork", json={"message_id": two, "conversation_id": "f"}
        ).status_code
        == 422
    )
