"""The REST API's reasoning and image fields, as the issue names them, over HTTP to the mounted
app with a real DuckDB file and the loopback Ollama server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatcore.config import Settings
from chatcore.services import Services, open_services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.images import png

OWN = f"http://127.0.0.1:{PORT}"
REASONING = "Two plus two makes four."


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    fake = FakeOllama(
        [
            FakeModel(
                "qwen3:4b",
                reply="It is 4.",
                thinking=REASONING,
                capabilities=("completion", "thinking"),
            ),
            FakeModel("gemma3:4b", reply="A red square.", capabilities=("completion", "vision")),
            FakeModel("llama3.2:latest", reply="Text only."),
        ]
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def services(server: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(
        Settings(ollama_host=server.url, db_path=tmp_path / "chat.duckdb", port=PORT)
    )
    yield opened
    opened.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def counts(services: Services) -> tuple[int, ...]:
    with services.db.cursor() as cur:
        return tuple(
            cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("conversations", "messages", "runs", "images")
        )


def chat(client: TestClient, **body: object):  # type: ignore[no-untyped-def]
    return client.post("/api/chat", json={"message": "2+2?", **body})


def test_the_reply_carries_thinking_beside_it_and_honest_metrics(client: TestClient) -> None:
    answer = chat(client, model_params={"model": "qwen3:4b", "think": True})
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert (reply["reply"], reply["thinking"]) == ("It is 4.", REASONING)
    metrics = reply["metrics"]
    assert metrics["thinking_tokens"] == len(REASONING.split(" "))
    assert metrics["answer_tokens"] == 3
    assert metrics["ttft_ms"] <= metrics["answer_ms"]
    assert metrics["thinking_ms"] >= 0

    history = client.get(f"/api/history/{reply['conversation_id']}").json()
    stored = history["messages"][1]
    assert stored["thinking"] == REASONING and stored["content"] == "It is 4."
    assert stored["options"]["think"] is True
    assert stored["metrics"] == metrics


def test_streamed_lines_keep_thinking_apart_from_content(client: TestClient) -> None:
    with client.stream(
        "POST",
        "/api/chat",
        json={"message": "2+2?", "stream": True, "model_params": {"model": "qwen3:4b"}},
    ) as answer:
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    pieces = [line for line in lines if not line["done"]]
    thinking = [line["thinking"] for line in pieces if "thinking" in line]
    content = [line["content"] for line in pieces if "content" in line]
    assert "".join(thinking) == REASONING and "".join(content) == "It is 4."
    assert all(("thinking" in line) != ("content" in line) for line in pieces)
    kinds = ["thinking" if "thinking" in line else "content" for line in pieces]
    assert kinds == sorted(kinds, reverse=True)  # all the reasoning, then the answer
    assert lines[-1]["done"] and lines[-1]["thinking"] == REASONING


@pytest.mark.parametrize("value", ["yes", "max", 1, "True", None, ["low"]])
def test_think_takes_true_false_or_a_level_and_nothing_else(
    client: TestClient, services: Services, value: object
) -> None:
    if value is None:  # JSON null: the model's default, as if omitted
        assert chat(client, model_params={"model": "qwen3:4b", "think": None}).status_code == 200
        return
    before = counts(services)
    answer = chat(client, model_params={"model": "qwen3:4b", "think": value})
    assert answer.status_code == 422
    assert "think" in answer.text
    assert counts(services) == before


@pytest.mark.parametrize("value", [True, False, "low", "medium", "high"])
def test_every_think_value_is_accepted_and_sent(
    client: TestClient, server: FakeOllama, value: object
) -> None:
    assert chat(client, model_params={"model": "qwen3:4b", "think": value}).status_code == 200
    assert server.chat_requests()[-1]["body"]["think"] == value


def test_images_go_to_a_vision_model_and_come_back_in_history(
    client: TestClient, server: FakeOllama
) -> None:
    encoded = base64.b64encode(png()).decode()
    answer = chat(
        client, message="What is it?", images=[encoded], model_params={"model": "gemma3:4b"}
    )
    assert answer.status_code == 200, answer.text
    assert server.chat_requests()[-1]["body"]["messages"][-1]["images"] == [encoded]
    history = client.get(f"/api/history/{answer.json()['conversation_id']}").json()
    assert history["messages"][0]["images"] == [encoded]


def test_a_model_without_vision_gets_422_naming_it_and_nothing_is_stored(
    client: TestClient, services: Services
) -> None:
    before = counts(services)
    answer = chat(
        client, images=[base64.b64encode(png()).decode()], model_params={"model": "llama3.2"}
    )
    assert answer.status_code == 422
    assert "llama3.2" in answer.json()["detail"]
    assert counts(services) == before


@pytest.mark.parametrize(
    "image", ["not base64!", base64.b64encode(b"plain text, no image").decode(), ""]
)
def test_an_invalid_image_gets_422(client: TestClient, services: Services, image: str) -> None:
    before = counts(services)
    answer = chat(client, images=[image], model_params={"model": "gemma3:4b"})
    assert answer.status_code == 422, answer.text
    assert counts(services) == before
