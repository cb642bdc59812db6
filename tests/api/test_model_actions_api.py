"""The REST twin of the Models page's per-model actions: a model's card, what is loaded, preload
and unload, delete; against a loopback server speaking Ollama's protocol (and one speaking
OpenAI's, where these actions are refused) and a real DuckDB file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.fake_openai import FakeOpenAI

OWN = f"http://127.0.0.1:{PORT}"
MODEL = "llama3.2:latest"
HOUR = 3600


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


@pytest.fixture
def openai_host(services: Services) -> Iterator[str]:
    server = FakeOpenAI([FakeModel("qwen3-32b")]).start()
    yield services.hosts.add(server.url, kind="openai").url
    server.stop()


def model_names(client: TestClient) -> set[str]:
    return {m["name"] for m in client.get("/api/models").json()["models"]}


def running_names(client: TestClient, host: str) -> list[str]:
    answer = client.get("/api/models/running", params={"host": host})
    assert answer.status_code == 200, answer.text
    return [m["name"] for m in answer.json()]


def actions(host: str, model: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every action on `model` at `host`: (method, path, params or JSON body)."""
    on = {"host": host, "model": model}
    return [
        ("GET", "/api/models/running", {"params": {"host": host}}),
        ("GET", "/api/models/card", {"params": on}),
        ("POST", "/api/models/load", {"json": on}),
        ("POST", "/api/models/unload", {"json": on}),
        ("DELETE", "/api/models", {"params": on}),
    ]


def test_the_card_shows_the_models_own_details(client: TestClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.models.append(
        FakeModel(
            "llava:7b",
            capabilities=("completion", "vision"),
            context_length=8192,
            parameters="temperature 1.4\nnum_predict 256",
            system="Describe images briefly.",
        )
    )
    answer = client.get("/api/models/card", params={"host": fake_ollama.url, "model": "llava:7b"})
    assert answer.status_code == 200, answer.text
    card = answer.json()
    assert (card["name"], card["host"]) == ("llava:7b", fake_ollama.url)
    assert card["capabilities"] == ["completion", "vision"]
    assert card["context_length"] == 8192
    assert card["parameters"] == {"temperature": ["1.4"], "num_predict": ["256"]}
    assert card["system"] == "Describe images briefly."
    # What "Use these in the sidebar" sets: temperature clamped to 1, num_predict as max_tokens.
    assert card["defaults"] == {
        "temperature": 1.0,
        "max_tokens": 256,
        "system_prompt": "Describe images briefly.",
    }


def test_load_shows_it_running_and_unload_frees_it(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    assert running_names(client, fake_ollama.url) == []
    loaded = client.post(
        "/api/models/load", json={"host": fake_ollama.url, "model": MODEL, "keep_alive": "2h"}
    )
    assert loaded.status_code == 200, loaded.text
    [entry] = loaded.json()
    assert (entry["name"], entry["host"]) == (MODEL, fake_ollama.url)
    assert entry["size_bytes"] > entry["vram_bytes"] > 0 and entry["context_length"] == 4096
    assert MODEL in fake_ollama.loaded
    expires = datetime.fromisoformat(entry["expires_at"]).timestamp()
    assert time.time() + 1.5 * HOUR < expires <= time.time() + 2 * HOUR  # keep_alive was sent
    assert running_names(client, fake_ollama.url) == [MODEL]

    unloaded = client.post("/api/models/unload", json={"host": fake_ollama.url, "model": MODEL})
    assert unloaded.status_code == 200, unloaded.text
    assert unloaded.json() == []
    assert MODEL not in fake_ollama.loaded
    assert running_names(client, fake_ollama.url) == []


def test_load_keeps_it_for_thirty_minutes_on_the_main_host_when_not_told(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    answer = client.post("/api/models/load", json={"model": "qwen3:4b"})
    assert answer.status_code == 200, answer.text
    assert [m["name"] for m in answer.json()] == ["qwen3:4b"]
    assert 25 * 60 < fake_ollama.loaded["qwen3:4b"] - time.time() <= 30 * 60
    assert [m["name"] for m in client.get("/api/models/running").json()] == ["qwen3:4b"]


def test_delete_removes_the_model_from_the_host(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    assert MODEL in model_names(client)  # listed (and cached) before the delete
    answer = client.delete("/api/models", params={"host": fake_ollama.url, "model": MODEL})
    assert answer.status_code == 204, answer.text
    assert fake_ollama.model(MODEL) is None
    assert MODEL not in model_names(client) and "qwen3:4b" in model_names(client)
    again = client.delete("/api/models", params={"host": fake_ollama.url, "model": MODEL})
    assert again.status_code == 404 and MODEL in again.json()["detail"]


def test_an_unknown_host_is_404_naming_it(client: TestClient) -> None:
    for method, path, arguments in actions("http://127.0.0.1:9", MODEL):
        answer = client.request(method, path, **arguments)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "http://127.0.0.1:9" in answer.json()["detail"] and "request_id" in answer.json()


def test_an_unknown_model_is_404_naming_it(client: TestClient, fake_ollama: FakeOllama) -> None:
    for method, path, arguments in actions(fake_ollama.url, "no-such-model:1b")[1:]:
        answer = client.request(method, path, **arguments)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "no-such-model:1b" in answer.json()["detail"]
    assert fake_ollama.loaded == {} and len(fake_ollama.models) == 2


def test_an_openai_compatible_server_is_422(client: TestClient, openai_host: str) -> None:
    for method, path, arguments in actions(openai_host, "qwen3-32b"):
        answer = client.request(method, path, **arguments)
        assert answer.status_code == 422, (method, path, answer.text)
        assert openai_host in answer.json()["detail"]
        assert "OpenAI-compatible" in answer.json()["detail"]
    assert "qwen3-32b" in model_names(client)


def test_a_host_that_does_not_answer_is_503(client: TestClient, services: Services) -> None:
    silent = services.hosts.add("127.0.0.1:9").url
    for method, path, arguments in actions(silent, MODEL):
        answer = client.request(method, path, **arguments)
        assert answer.status_code == 503, (method, path, answer.text)
        assert "request_id" in answer.json()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"model": ""},
        {"model": MODEL, "keep_alive": "forever"},
        {"model": MODEL, "keep_alive": 30},
        {"model": MODEL, "extra": 1},
    ],
    ids=["no-model", "empty-model", "bad-duration", "number", "unknown-field"],
)
def test_bad_loads_are_422_and_load_nothing(
    client: TestClient, fake_ollama: FakeOllama, body: dict[str, object]
) -> None:
    answer = client.post("/api/models/load", json=body)
    assert answer.status_code == 422, answer.text
    assert fake_ollama.loaded == {} and fake_ollama.chat_requests() == []


def test_the_last_params_route_beside_them_still_answers(
    client: TestClient, fake_ollama: FakeOllama
) -> None:
    """/models/{model:path}/last-params takes any path ending so; these routes take none."""
    answer = client.get("/api/models/card/last-params")
    assert answer.status_code == 404 and "card has not answered" in answer.json()["detail"]
    assert client.get(f"/api/models/{MODEL}/last-params").status_code == 404
    assert client.get("/api/models").status_code == 200
