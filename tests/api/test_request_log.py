"""The log: one JSON line per API request and per run, found by the id an error carries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatcore.config import Settings
from chatcore.logs import LOG_FILE_NAME
from chatcore.services import Services, open_services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeOllama

OWN = f"http://127.0.0.1:{PORT}"
TOKEN = "tok-3f9a1c77-never-in-a-log"


def open_with(fake_ollama: FakeOllama, db_path: Path, **more: object) -> Services:
    settings = Settings(ollama_host=fake_ollama.url, db_path=db_path, port=8501, **more)  # type: ignore[arg-type]
    return open_services(settings)


@pytest.fixture
def debug_services(fake_ollama: FakeOllama, db_path: Path) -> Iterator[Services]:
    opened = open_with(fake_ollama, db_path, log_level="DEBUG", api_token=TOKEN)
    yield opened
    opened.close()


def log_lines(db_path: Path) -> list[dict]:
    text = (db_path.parent / LOG_FILE_NAME).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_a_chat_writes_one_request_line_and_one_run_line_with_the_same_id(
    services: Services, db_path: Path
) -> None:
    with TestClient(mounted(services), base_url=OWN) as client:
        answer = client.post(
            "/api/chat",
            json={
                "message": "secret plans",
                "conversation_id": "会话",
                "model_params": {"model": "llama3.2"},
            },
        )
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-ID"]
    assert answer.json()["request_id"] == request_id
    lines = [line for line in log_lines(db_path) if line["request_id"] == request_id]
    assert [line["event"] for line in lines] == ["run", "request"]
    run, request = lines
    assert run["conversation"] == "会话" and run["model"] == "llama3.2:latest"
    assert run["backend"] == "ollama" and run["host"] == services.settings.ollama_host
    assert run["status"] == "complete" and run["error"] is None
    assert run["ttft_ms"] > 0 and run["total_ms"] >= run["ttft_ms"]
    assert request["status"] == 200 and request["path"].endswith("/chat")
    assert request["method"] == "POST" and request["duration_ms"] > 0
    assert {"time", "level"} <= request.keys()
    text = (db_path.parent / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "secret plans" not in text and "Hello there" not in text  # no text at INFO


def test_an_error_body_carries_the_id_of_its_log_line(services: Services, db_path: Path) -> None:
    with TestClient(mounted(services), base_url=OWN) as client:
        answer = client.post("/api/chat", json={"message": "Hi", "model_params": {"model": "nope"}})
    assert answer.status_code == 404
    request_id = answer.json()["request_id"]
    found = [line for line in log_lines(db_path) if line["request_id"] == request_id]
    events = {line["event"]: line for line in found}
    assert events["request"]["status"] == 404
    assert "Model 'nope' was not found" in events["request"]["error"]
    assert events["send.refused"]["error_kind"] == "ModelNotFound"


def test_debug_logs_the_text_and_the_token_never(debug_services: Services, db_path: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(mounted(debug_services, token=TOKEN), base_url=OWN) as client:
        client.post(
            "/api/chat",
            json={"message": f"my token is {TOKEN}", "model_params": {"model": "llama3.2"}},
            headers=headers,
        )
        refused = client.get("/api/conversations", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.json()["request_id"]
    text = (db_path.parent / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert TOKEN not in text
    assert "my token is [redacted]" in text  # DEBUG: the message, with the secret blanked
    assert "Hello there, I am a small model." in text


def test_log_level_warning_keeps_only_problems(fake_ollama: FakeOllama, db_path: Path) -> None:
    quiet = open_with(fake_ollama, db_path, log_level="warning")
    try:
        with TestClient(mounted(quiet), base_url=OWN) as client:
            client.post("/api/chat", json={"message": "Hi", "model_params": {"model": "llama3.2"}})
            client.post("/api/chat", json={"message": "Hi", "model_params": {"model": "nope"}})
    finally:
        quiet.close()
    assert {line["event"] for line in log_lines(db_path)} == {"send.refused"}


def test_a_busy_embedded_model_is_503_with_retry_after(
    fake_ollama: FakeOllama, db_path: Path, tmp_path: Path
) -> None:
    from chatcore.backends.embedded import NAME_SUFFIX, EmbeddedBackend

    services = open_with(fake_ollama, db_path, embedded=False)

    model_file = tmp_path / "busy-model.gguf"
    model_file.write_bytes(b"GGUF")
    backend = EmbeddedBackend([model_file], include_default=False, max_waiting=0)
    services.registry.add(backend)
    model = f"busy-model{NAME_SUFFIX}"
    for _ in range(backend.parallel):  # replies generating in every slot, no place to wait
        backend.slot(model).turns.join(max_waiting=10)
    try:
        with TestClient(mounted(services), base_url=OWN) as client:
            body = {"message": "Hi", "model_params": {"model": model}}
            answer = client.post("/api/chat", json=body)
    finally:
        services.close()
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert "busy" in answer.json()["detail"] and answer.json()["request_id"]


def test_backups_are_listed_taken_and_restored_through_the_api(services: Services) -> None:
    with TestClient(mounted(services), base_url=OWN) as client:
        assert client.get("/api/backups").json() == []
        body = {"message": "Hi", "conversation_id": "keep", "model_params": {"model": "llama3.2"}}
        client.post("/api/chat", json=body)
        taken = client.post("/api/backups")
        assert taken.status_code == 201 and taken.json()["size_bytes"] > 0
        name = taken.json()["name"]
        assert [b["name"] for b in client.get("/api/backups").json()] == [name]
        client.post("/api/chat", json={**body, "conversation_id": "later"})
        unconfirmed = client.post(f"/api/backups/{name}/restore", json={})
        assert unconfirmed.status_code == 422 and services.chat.exists("later")
        restored = client.post(f"/api/backups/{name}/restore", json={"confirm": True})
        assert restored.status_code == 200 and restored.json()["restored"] == name
        assert services.chat.exists("keep") and not services.chat.exists("later")
        missing = client.post("/api/backups/nope.duckdb/restore", json={"confirm": True})
        assert missing.status_code == 404 and missing.json()["request_id"]


def test_an_unexpected_failure_is_a_500_with_its_id_and_the_traceback_only_in_the_log(
    services: Services, db_path: Path
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from chatcore.api.rest import create_api
    from chatcore.api.security import own_origins

    def broken() -> Services:
        raise RuntimeError("a bug the handlers do not know")

    app = Starlette(routes=[Mount("/api", create_api(broken, origins=own_origins(PORT)))])
    with TestClient(app, base_url=OWN, raise_server_exceptions=False) as client:
        answer = client.get("/api/conversations")
    assert answer.status_code == 500
    body = answer.json()
    assert "Traceback" not in answer.text and body["request_id"] == answer.headers["X-Request-ID"]
    lines = [line for line in log_lines(db_path) if line["request_id"] == body["request_id"]]
    assert any("a bug the handlers do not know" in line.get("traceback", "") for line in lines)
    assert [line["status"] for line in lines if line["event"] == "request"] == [500]
