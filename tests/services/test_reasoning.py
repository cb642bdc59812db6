"""Reasoning replies through the one send path, against the loopback Ollama server: thinking
streamed and stored apart from the answer, measured honestly, never sent back to the model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.config import Settings
from chatcore.errors import InvalidInput
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.types import Thinking
from testkit.fake_ollama import FakeModel, FakeOllama

PARAMS = GenerationParams()
REASONING = "The user greets me. I should greet back briefly."
ANSWER = "Hello! Nice to meet you."


@pytest.fixture
def thinking_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel(
                "qwen3:4b",
                reply=ANSWER,
                thinking=REASONING,
                capabilities=("completion", "thinking"),
            ),
            FakeModel(
                "gpt-oss:20b",
                reply="Four.",
                thinking="Two plus two is four.",
                capabilities=("completion", "thinking"),
                think_values=("low", "medium", "high"),
                think_default="medium",
            ),
            FakeModel("deepseek-r1:1.5b", reply="<think>\nLet me see.\n</think>\n\nIt is 4."),
            FakeModel("llama3.2:latest", reply="Plain answer."),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def reasoning(thinking_ollama: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(
        Settings(ollama_host=thinking_ollama.url, db_path=tmp_path / "chat.duckdb", port=8501)
    )
    yield opened
    opened.close()


def test_thinking_streams_before_the_answer_and_is_stored_apart(reasoning: Services) -> None:
    stream = reasoning.chat.send(None, "Hi", "qwen3:4b", PARAMS)
    pieces = list(stream)
    kinds = [type(p) is Thinking for p in pieces]
    assert kinds == sorted(kinds, reverse=True)  # every thinking piece comes first
    assert "".join(p for p in pieces if type(p) is Thinking) == REASONING
    assert "".join(p for p in pieces if type(p) is str) == ANSWER
    reply = stream.reply
    assert (reply.text, reply.thinking, reply.status) == (ANSWER, REASONING, "complete")

    stored = reasoning.chat.messages(reply.conversation_id)[1]
    assert (stored.content, stored.thinking) == (ANSWER, REASONING)


def test_reasoning_metrics_separate_thinking_from_answering(
    reasoning: Services, thinking_ollama: FakeOllama
) -> None:
    thinking_ollama.model("qwen3:4b").token_delay = 0.02  # type: ignore[union-attr]
    reply = reasoning.chat.send(None, "Hi", "qwen3:4b", PARAMS).consume()
    metrics = reply.metrics
    thought = len(REASONING.split(" "))
    assert metrics.thinking_tokens == thought
    assert metrics.completion_tokens == thought + len(ANSWER.split(" "))  # Ollama counts both
    assert metrics.answer_tokens == len(ANSWER.split(" "))
    assert reply.ttft_ms is not None and metrics.answer_ms is not None
    # the first thinking piece comes well before the first answer piece
    assert metrics.answer_ms - reply.ttft_ms >= 0.02 * (thought - 1) * 1000 * 0.8
    assert metrics.thinking_ms is not None
    assert metrics.thinking_ms == pytest.approx(metrics.answer_ms - reply.ttft_ms, abs=1.0)

    run = reasoning.chat.messages(reply.conversation_id)[1].run
    assert run is not None
    assert run.metrics.thinking_tokens == thought
    assert run.metrics.answer_ms == pytest.approx(metrics.answer_ms)


def test_a_plain_reply_has_no_thinking_and_equal_times(reasoning: Services) -> None:
    reply = reasoning.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
    assert reply.thinking == ""
    assert reply.metrics.thinking_tokens == 0 and reply.metrics.thinking_ms is None
    assert reply.metrics.answer_ms == pytest.approx(reply.ttft_ms)
    assert reply.metrics.answer_tokens == reply.metrics.completion_tokens


def test_thinking_is_never_sent_back_to_the_model(
    reasoning: Services, thinking_ollama: FakeOllama
) -> None:
    first = reasoning.chat.send(None, "Hi", "qwen3:4b", PARAMS).consume()
    reasoning.chat.send(first.conversation_id, "And again", "qwen3:4b", PARAMS).consume()
    sent = thinking_ollama.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["Hi", ANSWER, "And again"]
    assert all(REASONING not in str(m) for m in sent)


def test_think_is_sent_as_asked_and_recorded_with_the_run(
    reasoning: Services, thinking_ollama: FakeOllama
) -> None:
    reply = reasoning.chat.send(None, "2+2?", "gpt-oss:20b", GenerationParams(think="high"))
    reply = reply.consume()
    assert thinking_ollama.chat_requests()[-1]["body"]["think"] == "high"
    assert reply.thinking.startswith("[high]")
    run = reasoning.chat.messages(reply.conversation_id)[1].run
    assert run is not None and run.options["think"] == "high"

    off = reasoning.chat.send(None, "Hi", "qwen3:4b", GenerationParams(think=False)).consume()
    assert thinking_ollama.chat_requests()[-1]["body"]["think"] is False
    assert (off.thinking, off.text) == ("", ANSWER)

    reasoning.chat.send(None, "Hi", "qwen3:4b", PARAMS).consume()
    assert "think" not in thinking_ollama.chat_requests()[-1]["body"]  # model default: nothing


@pytest.mark.parametrize("value", ["yes", 1, "max", "true", None])
def test_think_accepts_only_booleans_and_levels(value: object) -> None:
    if value is None:
        assert GenerationParams().think is None
        return
    with pytest.raises(ValueError):
        GenerationParams.model_validate({"think": value})


def test_inline_think_tags_become_thinking(reasoning: Services) -> None:
    stream = reasoning.chat.send(None, "2+2?", "deepseek-r1:1.5b", PARAMS)
    pieces = list(stream)
    assert all("<think>" not in p and "</think>" not in p for p in pieces)
    reply = stream.reply
    assert reply.thinking.strip() == "Let me see."
    assert reply.text == "It is 4."
    assert reply.metrics.thinking_tokens and reply.metrics.thinking_tokens > 0


def test_thinking_is_checkpointed_while_it_streams(
    reasoning: Services, thinking_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatcore.chat.CHECKPOINT_SECONDS", 0.1)
    thinking_ollama.model("qwen3:4b").token_delay = 0.1  # type: ignore[union-attr]
    stream = reasoning.chat.send(None, "Hi", "qwen3:4b", PARAMS)
    pieces = iter(stream)
    for _ in range(4):
        next(pieces)
    time.sleep(0.3)
    with reasoning.db.cursor() as cur:
        row = cur.execute(
            "SELECT content, thinking FROM messages WHERE id = ?", [stream.reply.message_id]
        ).fetchone()
    assert row is not None
    assert row[0] == "" and row[1].startswith("The user greets")
    stream.close()
    stored = reasoning.chat.messages(stream.reply.conversation_id)[1]
    assert stored.run is not None and stored.run.status == "stopped"
    assert stored.thinking.startswith("The user greets")


def test_abilities_name_the_thinking_levels(reasoning: Services) -> None:
    levels = reasoning.chat.abilities("gpt-oss:20b")
    assert levels.thinking and levels.think_choices == ("low", "medium", "high")
    assert levels.think_default == "medium"
    onoff = reasoning.chat.abilities("qwen3:4b")
    assert onoff.thinking and onoff.think_choices == (True, False)
    assert not reasoning.chat.abilities("llama3.2").thinking


def test_thinking_asked_of_a_model_that_cannot_is_an_error_stored_as_such(
    reasoning: Services,
) -> None:
    reply = reasoning.chat.send(None, "Hi", "llama3.2", GenerationParams(think=True)).consume()
    assert reply.status == "error" and "does not support thinking" in (reply.error or "")


def test_an_empty_message_is_still_refused(reasoning: Services) -> None:
    with pytest.raises(InvalidInput):
        reasoning.chat.send(None, "  ", "qwen3:4b", PARAMS)
