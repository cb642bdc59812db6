"""GET /api/search, the twin of History's search: hits with the message each matched first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from chatcore.services import Services
from testkit.asgi import PORT, mounted
from testkit.fake_ollama import FakeOllama
from testkit.history_data import varied_history


@pytest.fixture
def client(services: Services, fake_ollama: FakeOllama) -> Iterator[TestClient]:
    varied_history(services, fake_ollama)
    with TestClient(mounted(services), base_url=f"http://127.0.0.1:{PORT}") as test_client:
        yield test_client


def test_a_search_answers_its_hits_with_the_message_matched(client, services) -> None:
    answer = client.get("/api/search", params={"q": "QUOKKA"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 1 and body["complete"] is True
    (hit,) = body["hits"]
    assert hit["conversation_id"] == "beta" and hit["matching_messages"] == 1
    assert "Quokka" in hit["snippet"]
    first = services.chat.messages("beta")[0]
    assert hit["message_id"] == first.id


def test_nothing_found_and_an_empty_query(client) -> None:
    assert client.get("/api/search", params={"q": "zebra"}).json()["hits"] == []
    assert client.get("/api/search", params={"q": ""}).status_code == 422
