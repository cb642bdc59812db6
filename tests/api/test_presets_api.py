"""The presets' REST twins and the last parameters per model; a fitted reply's
metrics.context_dropped. Against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeOllama

OWN = f"http://127.0.0.1:{PORT}"


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def test_presets_are_created_listed_replaced_and_deleted(client: TestClient) -> None:
    created = client.post(
        "/api/presets",
        json={"name": "terse", "temperature": 0.1, "max_tokens": 100, "context_size": 4096},
    )
    assert created.status_code == 201
    assert created.json() == {
        "name": "terse",
        "system_prompt": "",
        "temperature": 0.1,
        "top_p": 0.9,
        "max_tokens": 100,
        "think": None,
        "context_size": 4096,
    }
    client.post("/api/presets", json={"name": "terse", "temperature": 0.3, "think": "low"})
    listed = client.get("/api/presets").json()
    assert [(p["name"], p["temperature"], p["think"]) for p in listed] == [("terse", 0.3, "low")]
    assert client.get("/api/presets/terse").json()["temperature"] == 0.3
    assert client.delete("/api/presets/terse").status_code == 204
    assert client.get("/api/presets").json() == []
    assert client.delete("/api/presets/terse").status_code == 404
    assert client.get("/api/presets/terse").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "hot", "temperature": 2},
        {"name": "", "temperature": 0.5},
        {"name": "x", "context_size": 1},
        {"name": "x", "colour": "blue"},
    ],
)
def test_a_bad_preset_is_422_and_stores_nothing(client: TestClient, body: dict) -> None:
    assert client.post("/api/presets", json=body).status_code == 422
    assert client.get("/api/presets").json() == []


def test_a_models_last_parameters_come_back(client: TestClient) -> None:
    assert client.get("/api/models/llama3.2/last-params").status_code == 404
    sent = client.post(
        "/api/chat",
        json={
            "message": "Hi",
            "model_params": {"model": "llama3.2", "temperature": 0.25, "system_prompt": "Hm."},
        },
    )
    assert sent.status_code == 200
    assert sent.json()["metrics"]["context_dropped"] == 0
    last = client.get("/api/models/llama3.2/last-params").json()
    assert (last["temperature"], last["system_prompt"], last["model"]) == (0.25, "Hm.", "llama3.2")
