"""Retry and failover: a reply whose host fails before its first token is answered by another host
that has the model; after the first token there is no retry. Real loopback servers, killed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.hosts import OPENAI
from chatcore.opening import MAX_ATTEMPTS
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.fake_openai import FakeOpenAI
from testkit.ports import closed_port_url
from ui.formatting import reply_caption

PARAMS = GenerationParams()
MODEL = "llama3.2:latest"


def server(reply: str, **model: object) -> FakeOllama:
    return FakeOllama([FakeModel(MODEL, reply=reply, **model)]).start()  # type: ignore[arg-type]


@pytest.fixture
def hosts() -> Iterator[tuple[FakeOllama, FakeOllama]]:
    a, b = server("From A."), server("From B.")
    yield a, b
    a.stop()
    b.stop()


def services_over(db_path: Path, *urls: str) -> Services:
    main, *more = urls
    return open_services(Settings(main, db_path, 0, ollama_hosts=tuple(more), embedded=False))


def test_a_host_killed_between_two_requests_goes_unnoticed(hosts, db_path: Path) -> None:
    a, b = hosts
    services = services_over(db_path, a.url, b.url)
    try:
        first = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
        assert (first.host, first.attempts) == (a.url, 1)
        a.stop()
        second = services.chat.send(first.conversation_id, "Again", "llama3.2", PARAMS).consume()
        assert (second.status, second.text) == ("complete", "From B.")
        assert (second.host, second.attempts) == (b.url, 2)
        run = services.chat.messages(first.conversation_id)[-1].run
        assert run is not None and (run.host, run.attempts, run.status) == (b.url, 2, "complete")
        caption = reply_caption(
            run.model, run.metrics, run.ttft_ms, run.status, run.attempts, run.host
        )
        assert f"answered by {b.url} after 1 host failed" in caption
        # the dead host is marked down: the next request goes straight to B
        third = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
        assert (third.host, third.attempts) == (b.url, 1)
    finally:
        services.close()


def test_a_host_killed_mid_stream_is_not_retried(db_path: Path) -> None:
    a = server(" ".join(f"w{i}" for i in range(200)), token_delay=0.01)
    b = server("From B.")
    services = services_over(db_path, a.url, b.url)
    try:
        stream = services.chat.send(None, "Hi", "llama3.2", PARAMS)
        pieces = iter(stream)
        received = [next(pieces) for _ in range(5)]
        a.stop()
        reply = stream.consume()
        assert reply.status == "error" and reply.attempts == 1 and reply.host == a.url
        assert reply.text.startswith("".join(received)) and len(reply.text) < 200 * 4
        stored = services.chat.messages(reply.conversation_id)[-1]
        assert stored.content == reply.text and stored.run is not None
        assert (stored.run.status, stored.run.attempts) == ("error", 1)
        assert b.chat_requests() == []  # no second answer was started behind the user's back
    finally:
        services.close()
        b.stop()


def test_an_error_before_the_first_token_moves_to_another_host(hosts, db_path: Path) -> None:
    a, b = hosts
    a.models[0].fail_after = 0  # Ollama's error line in place of the first token
    services = services_over(db_path, a.url, b.url)
    try:
        reply = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
        assert (reply.status, reply.host, reply.attempts) == ("complete", b.url, 2)
        assert len(a.chat_requests()) == 1
    finally:
        services.close()


def test_failover_crosses_protocols(db_path: Path) -> None:
    """Any model on any host: an OpenAI-compatible server takes over from a dead Ollama."""
    a = server("From Ollama.")
    b = FakeOpenAI([FakeModel(MODEL, reply="From OpenAI.")]).start()
    services = services_over(db_path, a.url)
    try:
        services.hosts.add(b.url, kind=OPENAI)
        services.registry.list_models()
        a.stop()
        reply = services.chat.send(None, "Hi", MODEL, PARAMS).consume()
        assert (reply.status, reply.text, reply.backend) == ("complete", "From OpenAI.", "openai")
        assert reply.attempts == 2
    finally:
        services.close()
        b.stop()


def test_attempts_are_bounded_and_the_last_failure_is_stored(db_path: Path) -> None:
    servers = [server(f"From {i}.", fail_after=0) for i in range(MAX_ATTEMPTS + 1)]
    services = services_over(db_path, *(s.url for s in servers))
    try:
        reply = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
        assert reply.status == "error" and reply.attempts == MAX_ATTEMPTS
        assert sum(len(s.chat_requests()) for s in servers) == MAX_ATTEMPTS
        run = services.chat.messages(reply.conversation_id)[-1].run
        assert run is not None and run.attempts == MAX_ATTEMPTS
    finally:
        services.close()
        for s in servers:
            s.stop()


def test_with_no_other_host_the_failure_is_stored_at_once(db_path: Path) -> None:
    a = server("From A.")
    services = services_over(db_path, a.url, closed_port_url())
    try:
        services.registry.list_models()
        a.stop()
        reply = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
        assert reply.status == "error" and a.url in (reply.error or "")
        assert reply.attempts == 1
    finally:
        services.close()
