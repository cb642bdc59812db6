"""The reply's own rows (its message, the open branch, its run) are written on a thread of their
own after the user's turn commits, beside the first token instead of before it. The first token
does not wait for them; the reply's stored outcome does; rows that cannot be written end the
reply in error, never in a hang. A real DuckDB file and a real loopback model server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.errors import StorageFailed
from chatcore.params import GenerationParams
from chatcore.storage.db import Database
from testkit.fake_ollama import FakeModel, FakeOllama

MODEL = "llama3.2:latest"


class HeldRows(Database):
    """The real database, whose reply-rows transactions wait for `release` (or fail)."""

    def __init__(self, path: Path, fail: bool = False) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.fail = fail

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if threading.current_thread().name.startswith("reply-rows"):
            self.release.wait(10)
            if self.fail:
                raise StorageFailed("The disk is full.")
        with super().transaction() as cur:
            yield cur

    def counts(self) -> tuple[int, int]:
        with self.cursor() as cur:
            row = cur.execute(
                "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM runs)"
            ).fetchone()
        assert row is not None
        return row[0], row[1]


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    fake = FakeOllama([FakeModel(MODEL, reply="An answer in a few words.")])
    yield fake.start()
    fake.stop()


def chat_over(db: Database, server: FakeOllama) -> ChatService:
    registry = Registry([OllamaBackend(server.url)])
    registry.list_models()
    return ChatService(db, registry)


def test_the_first_token_does_not_wait_for_the_reply_rows(
    tmp_path: Path, server: FakeOllama
) -> None:
    db = HeldRows(tmp_path / "rows.duckdb")
    try:
        chat = chat_over(db, server)
        stream = chat.send(None, "Hi", MODEL, GenerationParams())
        pieces = iter(stream)
        assert next(pieces) == "An"  # shown while the reply's rows are still held
        assert db.counts() == (1, 0)  # the user's message alone is committed
        db.release.set()
        reply = stream.consume()
        assert reply.status == "complete" and reply.text == "An answer in a few words."
        assert db.counts() == (2, 1)
        stored = chat.messages(reply.conversation_id)
        assert [(m.role, m.content) for m in stored][-1] == ("assistant", reply.text)
        assert stored[-1].run is not None and stored[-1].run.status == "complete"
    finally:
        db.close()


def test_reply_rows_that_cannot_be_written_end_the_reply_in_error(
    tmp_path: Path, server: FakeOllama
) -> None:
    db = HeldRows(tmp_path / "rows.duckdb", fail=True)
    try:
        chat = chat_over(db, server)
        stream = chat.send(None, "Hi", MODEL, GenerationParams())
        db.release.set()
        reply = stream.consume()
        assert reply.status == "error" and "disk is full" in (reply.error or "")
        assert stream.finished
        assert db.counts() == (1, 0)  # the user's message stays, as after a crash
        # The conversation's turn was let go: the next send to it goes through.
        db.fail = False
        again = chat.send(reply.conversation_id, "Again", MODEL, GenerationParams()).consume()
        assert again.status == "complete"
    finally:
        db.close()


def test_two_sends_to_one_conversation_still_chain(tmp_path: Path, server: FakeOllama) -> None:
    db = HeldRows(tmp_path / "rows.duckdb")
    db.release.set()
    try:
        chat = chat_over(db, server)
        first = chat.send("one", "First", MODEL, GenerationParams())
        done: list[str] = []
        second = threading.Thread(
            target=lambda: done.append(
                chat.send("one", "Second", MODEL, GenerationParams()).consume().status
            )
        )
        second.start()
        first.consume()
        second.join(10)
        assert done == ["complete"]
        roles = [(m.role, m.content) for m in chat.messages("one")]
        assert [role for role, _ in roles] == ["user", "assistant", "user", "assistant"]
        assert roles[0][1] == "First" and roles[2][1] == "Second"
    finally:
        db.close()
