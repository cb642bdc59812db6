"""The knowledge base's REST twin: documents in and out over multipart, and chats that name
their collections in model_params and answer with citations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatcore.config import Settings
from chatcore.services import Services, open_services
from testkit.asgi import PORT, mounted
from testkit.documents import pdf_with_pages
from testkit.fake_ollama import FakeModel, FakeOllama

OWN = f"http://127.0.0.1:{PORT}"
EMBEDDER = "ollama:nomic-embed-text:latest"


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    fake = FakeOllama(
        [
            FakeModel("llama2:latest", reply="The code is 4711 [1]."),
            FakeModel("nomic-embed-text:latest", embedding_dims=256),
        ]
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def services(server: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(ollama_host=server.url, db_path=tmp_path / "api.duckdb", port=PORT)
    opened = open_services(settings)
    opened.knowledge.create_collection("manuals", EMBEDDER)
    yield opened
    opened.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(mounted(services), base_url=OWN) as test_client:
        yield test_client


def upload(client: TestClient, name: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post("/api/documents", files={"file": (name, data)}, data=form)


def test_upload_answers_the_indexed_documents_id(client: TestClient) -> None:
    pdf = pdf_with_pages([["Gate"], ["The gate code is 4711."]])
    answer = upload(client, "gate.pdf", pdf, collection="manuals")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "ready" and body["chunk_count"] == 2
    assert body["collection"] == "manuals" and body["embedding_model"] == EMBEDDER
    listed = client.get("/api/documents").json()
    assert [d["id"] for d in listed] == [body["id"]]


def test_without_waiting_the_answer_comes_at_once_with_its_state(client: TestClient) -> None:
    answer = client.post(
        "/api/documents?wait=false",
        files={"file": ("note.md", b"# Gate\n\nThe gate code is 4711.")},
        data={"collection": "manuals"},
    )
    assert answer.status_code == 202
    assert answer.json()["status"] in ("indexing", "ready")
    for _ in range(100):
        if client.get(f"/api/documents/{answer.json()['id']}").json()["status"] == "ready":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the document was never indexed")


def test_the_default_collection_is_made_on_first_use(client: TestClient) -> None:
    answer = upload(client, "note.txt", b"The gate code is 4711.")
    assert answer.status_code == 201, answer.text
    assert answer.json()["collection"] == "default"


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("empty.txt", b"", 422),
        ("broken.pdf", b"%PDF-1.4 not really", 415),
        ("sheet.xlsx", b"PK\x03\x04", 415),
        ("huge.txt", b"a" * (20 * 1024 * 1024 + 1), 413),
    ],
)
def test_bad_files_get_a_clear_4xx_and_store_nothing(
    client: TestClient, name: str, data: bytes, status: int
) -> None:
    answer = upload(client, name, data, collection="manuals")
    assert answer.status_code == status
    assert name in answer.json()["detail"]
    assert client.get("/api/documents").json() == []


def test_a_missing_file_field_is_422(client: TestClient) -> None:
    assert client.post("/api/documents", data={"collection": "manuals"}).status_code == 422


def test_delete_removes_the_document(client: TestClient) -> None:
    document = upload(client, "n.txt", b"The gate code is 4711.", collection="manuals").json()
    assert client.delete(f"/api/documents/{document['id']}").status_code == 204
    assert client.get("/api/documents").json() == []
    assert client.delete(f"/api/documents/{document['id']}").status_code == 404


def test_chat_with_collections_answers_with_citations(client: TestClient) -> None:
    upload(client, "gate.txt", b"The gate code is 4711.", collection="manuals")
    answer = client.post(
        "/api/chat",
        json={
            "message": "What is the gate code?",
            "model_params": {"model": "llama2", "collections": ["manuals"]},
        },
    )
    assert answer.status_code == 200, answer.text
    [citation] = answer.json()["citations"]
    assert citation["document"] == "gate.txt" and "4711" in citation["text"]
    assert citation["score"] > 0 and citation["number"] == 1


def test_chat_with_an_unknown_collection_is_404_and_stores_nothing(client: TestClient) -> None:
    answer = client.post(
        "/api/chat",
        json={"message": "hi", "conversation_id": "k1", "model_params": {"collections": ["x"]}},
    )
    assert answer.status_code == 404
    assert client.get("/api/history/k1").status_code == 404


def ask(client: TestClient, conversation: str, **model_params: object) -> list[dict[str, Any]]:
    answer = client.post(
        "/api/chat",
        json={
            "message": "What is the gate code?",
            "conversation_id": conversation,
            "model_params": {"model": "llama2", **model_params},
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["citations"]


def test_history_lists_each_replys_citations(client: TestClient) -> None:
    upload(client, "gate.txt", b"The gate code is 4711.", collection="manuals")
    ask(client, "cited", collections=["manuals"])
    ask(client, "cited", collections=[])
    history = client.get("/api/history/cited").json()
    replies = [m for m in history["messages"] if m["role"] == "assistant"]
    [citation] = replies[0]["citations"]
    assert citation["document"] == "gate.txt" and "4711" in citation["text"]
    assert citation["number"] == 1 and citation["score"] > 0
    assert replies[1]["citations"] == []
    assert all(m["citations"] == [] for m in history["messages"] if m["role"] == "user")


def test_a_conversation_keeps_its_collections_until_told_otherwise(client: TestClient) -> None:
    upload(client, "gate.txt", b"The gate code is 4711.", collection="manuals")
    assert ask(client, "new") == []  # a new conversation has none
    assert len(ask(client, "kept", collections=["manuals"])) == 1
    assert len(ask(client, "kept")) == 1  # omitted: the conversation's own
    assert ask(client, "new") == []  # another conversation's choice is not this one's
    assert ask(client, "kept", collections=[]) == []  # [] turns them off, and that is kept
    assert ask(client, "kept") == []


def test_a_remembered_collection_deleted_since_is_dropped(
    client: TestClient, services: Services
) -> None:
    services.knowledge.create_collection("old", EMBEDDER)
    upload(client, "gate.txt", b"The gate code is 4711.", collection="old")
    assert len(ask(client, "k", collections=["old"])) == 1
    services.knowledge.delete_collection("old")
    assert ask(client, "k") == []
