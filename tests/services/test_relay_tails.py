"""A tool's next request continues where its conversation's open branch ends: taken from its
last turn while nothing else wrote, read again after any other write (a regenerate, a delete).
A real DuckDB file, a real loopback model server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.errors import InvalidInput
from chatcore.history import HistoryService
from chatcore.params import GenerationParams
from chatcore.relay_tails import REMEMBERED, RelayTails
from chatcore.storage.db import Database
from chatcore.types import ChatMessage, StoredMessage
from testkit.fake_ollama import FakeModel, FakeOllama

MODEL = "llama3.2:latest"
PARAMS = GenerationParams()
TOOL = "zed-editor"


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    fake = FakeOllama([FakeModel(MODEL, reply="Done.")])
    yield fake.start()
    fake.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "chat.duckdb")
    yield database
    database.close()


class Tool:
    """An editor: it sends its whole chat again with each new question."""

    def __init__(self, chat: ChatService) -> None:
        self.chat = chat
        self.history: list[ChatMessage] = []

    def ask(self, question: str) -> str:
        self.history.append(ChatMessage(role="user", content=question))
        reply = self.chat.relay(self.history, MODEL, PARAMS, TOOL).consume()
        self.history.append(ChatMessage(role="assistant", content=reply.text))
        return reply.conversation_id


def stored(chat: ChatService, conversation_id: str) -> list[StoredMessage]:
    return chat.messages(conversation_id)  # the open branch


def chat_over(db: Database, server: FakeOllama, tails: RelayTails) -> ChatService:
    registry = Registry([OllamaBackend(server.url)])
    registry.list_models()
    return ChatService(db, registry, relay_tails=tails)


def test_a_tools_turns_follow_one_another_and_the_end_is_remembered(
    db: Database, server: FakeOllama
) -> None:
    tails = RelayTails()
    chat = chat_over(db, server, tails)
    tool = Tool(chat)
    for question in ("Refactor this", "Now in Rust", "Add tests"):
        conversation_id = tool.ask(question)
        branch = stored(chat, conversation_id)
        assert tails.end(conversation_id, db.transactions) == branch[-1].id
    assert [m.role for m in branch] == ["user", "assistant"] * 3
    assert [m.parent_id for m in branch] == [None] + [m.id for m in branch[:-1]]
    chat.close()


def test_a_regenerate_between_requests_moves_the_end(db: Database, server: FakeOllama) -> None:
    tails = RelayTails()
    chat = chat_over(db, server, tails)
    tool = Tool(chat)
    tool.ask("Refactor this")
    conversation_id = tool.ask("Now in Rust")
    remembered = stored(chat, conversation_id)[-1].id
    chat.regenerate(conversation_id, MODEL, PARAMS).consume()  # a page's write: a sibling reply
    regenerated = stored(chat, conversation_id)[-1].id
    assert regenerated != remembered
    assert tails.end(conversation_id, db.transactions) is None
    tool.ask("Add tests")
    question = stored(chat, conversation_id)[-2]
    assert (question.content, question.parent_id) == ("Add tests", regenerated)
    chat.close()


def test_a_deleted_conversation_is_made_again(db: Database, server: FakeOllama) -> None:
    chat = chat_over(db, server, RelayTails())
    tool = Tool(chat)
    conversation_id = tool.ask("Refactor this")
    HistoryService(db).delete([conversation_id])
    assert tool.ask("Now in Rust") == conversation_id  # the same opening: the same id
    branch = stored(chat, conversation_id)
    first = branch[0]
    assert (first.role, first.content, first.parent_id) == ("user", "Now in Rust", None)
    chat.close()


def test_any_writing_transaction_ends_what_was_remembered(db: Database) -> None:
    tails = RelayTails()
    with db.transaction():
        tails.remember("proxy-a", 7, db.transaction_number)
    assert tails.end("proxy-a", db.transactions) == 7
    with pytest.raises(InvalidInput), db.transaction():  # rolled back: still counted
        raise InvalidInput("no")
    assert tails.end("proxy-a", db.transactions) is None


def test_only_the_newest_conversations_are_remembered() -> None:
    tails = RelayTails()
    for number in range(REMEMBERED + 1):
        tails.remember(f"proxy-{number}", number, 1)
    assert tails.end("proxy-0", 1) is None
    assert tails.end(f"proxy-{REMEMBERED}", 1) == REMEMBERED
