"""The pulls' REST API: POST /api/pulls starts one in the background, GET reads it, DELETE
cancels it; bad input is refused before anything starts. Against the loopback Ollama's /api/pull."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama

OWN = f"http://127.0.0.1:{PORT}"


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def ended(client: TestClient, pull_id: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = client.get(f"/api/pulls/{pull_id}").json()
        if body["state"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError("the pull did not end")


def test_a_pull_from_a_script(client: TestClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.library.append(FakeModel("phi4:latest", layers=(8_000, 2_000)))
    fake_ollama.pull_delay = 0.01
    started = client.post("/api/pulls", json={"model": "phi4"})
    assert started.status_code == 202
    job = started.json()
    assert (job["state"], job["model"], job["host"]) == ("running", "phi4", fake_ollama.url)
    assert [p["id"] for p in client.get("/api/pulls").json()] == [job["id"]]
    body = ended(client, job["id"])
    assert (body["state"], body["status"], body["fraction"], body["total"]) == (
        "done",
        "success",
        1.0,
        10_000,
    )
    assert len(body["layers"]) == 2 and body["error"] is None
    names = [m["name"] for m in client.get("/api/models").json()["models"]]
    assert "phi4:latest" in names


def test_delete_cancels_a_running_pull(client: TestClient, fake_ollama: FakeOllama) -> None:
    fake_ollama.library.append(FakeModel("slowpull:latest"))
    fake_ollama.pull_delay = 0.1
    job = client.post("/api/pulls", json={"model": "slowpull", "host": fake_ollama.url}).json()
    assert client.delete(f"/api/pulls/{job['id']}").status_code == 200
    assert ended(client, job["id"])["state"] == "cancelled"
    assert fake_ollama.model("slowpull:latest") is None


def test_a_failed_pull_keeps_the_servers_words(client: TestClient) -> None:
    job = client.post("/api/pulls", json={"model": "no-such-model"}).json()
    body = ended(client, job["id"])
    assert body["state"] == "failed" and "file does not exist" in body["error"]


@pytest.mark.parametrize(
    "body",
    [{}, {"model": ""}, {"model": "   "}, {"model": "a b"}, {"model": "x", "extra": 1}, []],
)
def test_bad_pulls_are_422_and_start_nothing(client: TestClient, body: object) -> None:
    response = client.post("/api/pulls", json=body)
    assert response.status_code == 422, response.text
    assert client.get("/api/pulls").json() == []


def test_unknown_pulls_and_hosts(client: TestClient) -> None:
    assert client.get("/api/pulls/nope").status_code == 404
    assert client.delete("/api/pulls/nope").status_code == 404
    refused = client.post("/api/pulls", json={"model": "phi4", "host": "http://127.0.0.1:9"})
    assert refused.status_code == 503 and "request_id" in refused.json()
