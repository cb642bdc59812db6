"""A reply queued at a busy embedded model: it waits visibly, a stop ends it at once.

No model is loaded: a placeholder .gguf file gives the model a queue, and the test holds the
model's slots itself, as replies generating elsewhere would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.backends.embedded import NAME_SUFFIX, EmbeddedBackend
from chatcore.backends.turns import Turns
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeOllama


@pytest.fixture
def queued_model(tmp_path: Path) -> tuple[EmbeddedBackend, str]:
    model_file = tmp_path / f"queued-{time.monotonic_ns()}.gguf"  # a queue of its own per test
    model_file.write_bytes(b"GGUF")
    backend = EmbeddedBackend([model_file], include_default=False, max_waiting=1, wait_seconds=30)
    return backend, f"{model_file.stem}{NAME_SUFFIX}"


@pytest.fixture
def with_embedded(
    fake_ollama: FakeOllama, db_path: Path, queued_model: tuple[EmbeddedBackend, str]
) -> Iterator[Services]:
    settings = Settings(ollama_host=fake_ollama.url, db_path=db_path, port=8501, embedded=False)
    opened = open_services(settings)
    opened.registry.add(queued_model[0])
    yield opened
    opened.close()


def held(backend: EmbeddedBackend, model: str) -> Turns:
    """The model's queue, with every slot taken (as by replies generating)."""
    turns = backend.slot(model).turns
    for _ in range(backend.parallel):
        turns.join(max_waiting=10)
    return turns


def test_a_queued_reply_says_how_many_are_ahead_and_a_stop_ends_it_at_once(
    with_embedded: Services, queued_model: tuple[EmbeddedBackend, str]
) -> None:
    backend, model = queued_model
    turns = held(backend, model)
    stream = with_embedded.chat.send(None, "Hello?", model, GenerationParams())
    pieces = iter(stream)
    assert next(pieces) == "" and stream.waiting_ahead == 1  # queued behind the holders
    assert turns.waiting == 1
    started = time.monotonic()
    stream.close()  # the stop button
    assert time.monotonic() - started < 1.0
    assert turns.waiting == 0  # its place is given up
    assert stream.reply.status == "stopped" and stream.reply.text == ""
    stored = with_embedded.chat.messages(stream.reply.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].run is not None and stored[1].run.status == "stopped"


def test_past_the_queue_the_reply_is_stored_as_busy_error(
    with_embedded: Services, queued_model: tuple[EmbeddedBackend, str]
) -> None:
    backend, model = queued_model
    turns = held(backend, model)
    turns.join(max_waiting=10)  # the one queue place (max_waiting=1) taken too
    reply = with_embedded.chat.send(None, "Hello?", model, GenerationParams()).consume()
    assert reply.status == "error" and reply.error and "busy" in reply.error
    assert turns.waiting == 1  # the refused one never queued
