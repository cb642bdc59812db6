"""The hosts' REST twin (the Models page's host list): Ollama hosts and OpenAI-compatible servers
added, listed with their status, and removed, against loopback servers of both protocols and a
real DuckDB file. An API key is never answered back whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.fake_openai import FakeOpenAI

OWN = f"http://127.0.0.1:{PORT}"
KEY = "sk-a-long-secret-9f3c"


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


@pytest.fixture
def second_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama([FakeModel("mistral:7b", reply="From the second host.")]).start()
    yield server
    server.stop()


@pytest.fixture
def keyed_vllm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([FakeModel("qwen3-32b", reply="Served by vLLM.")], api_key=KEY).start()
    yield server
    server.stop()


def model_names(client: TestClient) -> set[str]:
    return {m["name"] for m in client.get("/api/models").json()["models"]}


def test_the_configured_host_is_listed_with_its_status(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    [host] = client.get("/api/hosts").json()
    assert host["url"] == fake_ollama.url and host["kind"] == "ollama"
    assert host["source"] == "environment" and host["removable"] is False
    assert host["reachable"] is True and host["version"] and host["latency_ms"] >= 0
    assert host["error"] is None and host["in_flight"] == 0


def test_an_ollama_host_added_joins_the_models_and_leaves_when_removed(
    client: TestClient, second_ollama: FakeOllama
) -> None:
    added = client.post("/api/hosts", json={"url": second_ollama.url})
    assert added.status_code == 201, added.text
    assert added.json()["url"] == second_ollama.url and added.json()["reachable"] is True
    assert added.json()["source"] == "added here" and added.json()["removable"] is True
    assert "mistral:7b" in model_names(client)
    assert [h["url"] for h in client.get("/api/hosts").json()][1] == second_ollama.url

    removed = client.delete("/api/hosts", params={"url": second_ollama.url})
    assert removed.status_code == 204
    assert len(client.get("/api/hosts").json()) == 1
    assert "mistral:7b" not in model_names(client)


def test_an_openai_server_is_added_with_its_key_never_shown_whole(
    client: TestClient, keyed_vllm: FakeOpenAI
) -> None:
    added = client.post(
        "/api/hosts", json={"url": keyed_vllm.url, "kind": "openai", "api_key": KEY}
    )
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == "openai" and added.json()["reachable"] is True
    assert added.json()["api_key"] == "…9f3c"
    listing = client.get("/api/hosts")
    assert KEY not in listing.text and KEY not in added.text
    assert "qwen3-32b" in model_names(client)  # the key went with the listing: it answered
    reply = client.post("/api/chat", json={"message": "Hi", "model_params": {"model": "qwen3-32b"}})
    assert reply.json()["reply"] == "Served by vLLM."


def test_a_key_named_by_its_environment_variable_is_shown_by_name(
    client: TestClient, keyed_vllm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_KEY", KEY)
    body = {"url": keyed_vllm.url, "kind": "openai", "api_key": "$VLLM_KEY"}
    added = client.post("/api/hosts", json=body)
    assert added.status_code == 201 and added.json()["api_key"] == "$VLLM_KEY"
    assert added.json()["reachable"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"url": ""},
        {"url": "not a host at all"},
        {"url": "127.0.0.1:9", "kind": "llamafile"},
        {"url": "127.0.0.1:9", "api_key": "sk-for-ollama?"},
        {"url": "127.0.0.1:9", "port": 9},
    ],
    ids=["empty", "not-an-address", "unknown-kind", "key-for-ollama", "unknown-field"],
)
def test_bad_hosts_are_422_and_store_nothing(
    client: TestClient, services: Services, body: dict[str, object]
) -> None:
    answer = client.post("/api/hosts", json=body)
    assert answer.status_code == 422, answer.text
    assert len(services.hosts.all()) == 1


def test_removing_a_configured_host_is_422_and_an_unknown_one_404(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    assert client.delete("/api/hosts", params={"url": fake_ollama.url}).status_code == 422
    assert client.delete("/api/hosts", params={"url": "http://127.0.0.1:9"}).status_code == 404
    assert len(client.get("/api/hosts").json()) == 1
