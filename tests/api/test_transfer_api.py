"""GET /api/export streams the export over real HTTP; POST /api/import takes one as the body;
the History page's ticketed link downloads without the API token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatcore import transfer_export
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.asgi import mounted, served
from testkit.fake_ollama import FakeOllama

TOKEN = "a-long-enough-secret-token-for-the-test"


@pytest.fixture
def target(fake_ollama: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(fake_ollama.url, tmp_path / "target.duckdb", 8501))
    yield opened
    opened.close()


def chats(services: Services, count: int) -> None:
    for i in range(count):
        services.chat.send(f"c{i}", f"question {i}", "llama3.2", GenerationParams()).consume()


def test_the_export_streams_in_chunks_and_imports_over_http(
    services: Services, target: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats(services, 6)
    monkeypatch.setattr(transfer_export, "CHUNK_BYTES", 512)  # many chunks from a small history
    monkeypatch.setattr(transfer_export, "BATCH_MESSAGES", 2)
    with served(mounted(services)) as url, httpx.stream("GET", f"{url}/api/export") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert 'filename="all-conversations.json"' in answer.headers["content-disposition"]
        assert "content-length" not in answer.headers  # sent as it is read
        chunks = list(answer.iter_raw())
    assert len(chunks) > 3
    body = b"".join(chunks)
    document = json.loads(body)
    assert document["version"] == 5 and len(document["conversations"]) == 6

    with served(mounted(target)) as url:
        answer = httpx.post(f"{url}/api/import", content=iter(chunks), timeout=30)
        assert answer.status_code == 200, answer.text
        assert sorted(answer.json()["imported"]) == [f"c{i}" for i in range(6)]
        again = httpx.post(f"{url}/api/import", content=body, timeout=30).json()
        assert again["imported"] == [] and len(again["skipped"]) == 6
    assert [m.content for m in target.chat.messages("c3")] == [
        m.content for m in services.chat.messages("c3")
    ]


def test_selected_conversations_and_markdown(services: Services) -> None:
    chats(services, 3)
    with served(mounted(services)) as url:
        one = httpx.get(f"{url}/api/export", params={"conversation_id": ["c1", "c2"]})
        markdown = httpx.get(f"{url}/api/export", params={"format": "markdown"})
        old = httpx.get(f"{url}/api/export", params={"version": 4})
    assert [c["id"] for c in one.json()["conversations"]] == ["c1", "c2"]
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.count("**User**") == 3
    assert old.json()["version"] == 4


def test_a_bad_file_is_422_and_stores_nothing(services: Services) -> None:
    chats(services, 1)
    with served(mounted(services)) as url:
        body = httpx.get(f"{url}/api/export").content
        services.history.delete(["c0"])
        truncated = httpx.post(f"{url}/api/import", content=body[: len(body) // 2])
        foreign = httpx.post(f"{url}/api/import", content=b'{"chats": []}')
    assert truncated.status_code == foreign.status_code == 422
    assert "not valid JSON" in truncated.json()["detail"]
    assert "not a conversation export" in foreign.json()["detail"]
    assert services.history.list_conversations().total == 0


def test_the_pages_ticket_downloads_without_the_token_and_only_for_a_while(
    services: Services,
) -> None:
    chats(services, 2)
    ticket = services.transfer.download_ticket(None, "json")
    with served(mounted(services, token=TOKEN)) as url:
        assert httpx.get(f"{url}/api/export").status_code == 401  # the API wants its token
        answer = httpx.get(f"{url}/api/export/download/{ticket}")
        assert answer.status_code == 200 and len(answer.json()["conversations"]) == 2
        assert httpx.get(f"{url}/api/export/download/not-a-ticket").status_code == 404
