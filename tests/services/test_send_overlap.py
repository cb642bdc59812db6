"""The request to the model overlaps the commit of the user's turn, and still nothing of a reply
is shown or stored before that turn is committed (architecture rule 4); a turn whose commit fails
gets no reply at all. A real DuckDB file, a real loopback model server that answers at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService, ReplyStream
from chatcore.errors import StorageFailed
from chatcore.params import GenerationParams
from chatcore.storage.db import Database
from chatcore.types import ChatMessage
from testkit.fake_ollama import FakeModel, FakeOllama

MODEL = "llama3.2:latest"
PARAMS = GenerationParams()
Send = Callable[[ChatService], ReplyStream]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class HeldCommit(Database):
    """The real database, whose next writing transaction holds its commit until the model
    server has received the chat request (or fails it, with `fail`): the request must have
    gone out while the turn was being written."""

    def __init__(self, path: Path, server: FakeOllama, fail: bool = False) -> None:
        super().__init__(path)
        self.server, self.fail = server, fail
        self.holding = True
        self.request_during_transaction = False
        self.committed_at: float | None = None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        held, self.holding = self.holding, False
        with super().transaction() as cur:
            yield cur
            if held:
                self.request_during_transaction = wait_for(
                    lambda: bool(self.server.chat_requests())
                )
                if self.fail:
                    raise StorageFailed("The disk is full.")  # rolled back: nothing committed
        if held:
            self.committed_at = time.perf_counter()

    def user_turns(self) -> int:
        with self.cursor() as cur:  # a cursor of its own sees only what is committed
            row = cur.execute("SELECT count(*) FROM messages WHERE role = 'user'").fetchone()
        return row[0] if row else 0

    def table_counts(self) -> tuple[int, int, int]:
        with self.cursor() as cur:
            return tuple(  # type: ignore[return-value]
                cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in ("conversations", "messages", "runs")
            )


def send(chat: ChatService) -> ReplyStream:
    return chat.send(None, "Hi", MODEL, PARAMS)


def relay(chat: ChatService) -> ReplyStream:
    return chat.relay([ChatMessage(role="user", content="Hi")], MODEL, PARAMS, "a-tool")


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    fake = FakeOllama([FakeModel(MODEL, reply="Instant answer, then more words " * 20)])
    yield fake.start()
    fake.stop()


def chat_over(db: Database, server: FakeOllama) -> ChatService:
    registry = Registry([OllamaBackend(server.url)])
    registry.list_models()  # listed up front: the only chat request is the send's
    return ChatService(db, registry)


@pytest.mark.parametrize("start", [send, relay], ids=["send", "relay"])
def test_the_model_is_asked_while_the_turn_commits_and_answers_only_after(
    tmp_path: Path, server: FakeOllama, start: Send
) -> None:
    db = HeldCommit(tmp_path / "overlap.duckdb", server)
    try:
        chat = chat_over(db, server)
        stream = start(chat)
        # The server had the request (and, answering at once, its first token was ready)
        # before the turn's commit: the two overlapped.
        assert db.request_during_transaction
        pieces = iter(stream)
        first = next(pieces)
        seen_at = time.perf_counter()
        assert first == "Instant"
        assert db.committed_at is not None and db.committed_at < seen_at
        assert db.user_turns() == 1  # committed, seen from another cursor, before the first piece
        reply = stream.consume()
        assert reply.status == "complete" and reply.text.startswith("Instant answer")
        assert chat.registry.in_flight(server.url) == 0
    finally:
        db.close()


@pytest.mark.parametrize("start", [send, relay], ids=["send", "relay"])
def test_a_turn_whose_commit_fails_gets_no_reply(
    tmp_path: Path, server: FakeOllama, start: Send
) -> None:
    server.models[0].token_delay = 0.05  # still streaming when the request is closed
    db = HeldCommit(tmp_path / "failed.duckdb", server, fail=True)
    try:
        chat = chat_over(db, server)
        with pytest.raises(StorageFailed, match="disk is full"):
            start(chat)
        assert db.request_during_transaction  # the request had gone out ...
        assert wait_for(lambda: server.cancelled == 1)  # ... and was closed, unanswered
        assert db.table_counts() == (0, 0, 0)  # nothing written: no turn, no reply, no run
        assert chat.registry.in_flight(server.url) == 0
    finally:
        db.close()
