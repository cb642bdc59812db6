"""The send path against a real loopback HTTP server speaking Ollama's protocol."""

from __future__ import annotations

import json
import time

import pytest

from chatcore.chat import title_from
from chatcore.config import Settings
from chatcore.errors import BackendUnavailable, InvalidInput, ModelNotFound
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.ports import closed_port_url

PARAMS = GenerationParams()


def table_counts(services: Services) -> tuple[int, int, int]:
    with services.db.cursor() as cur:
        return tuple(
            cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("conversations", "messages", "runs")
        )


def test_reply_streams_token_by_token_and_is_stored_with_metrics(services: Services) -> None:
    stream = services.chat.send(None, "Hi there", "llama3.2", PARAMS)
    pieces = list(stream)
    assert pieces[:2] == ["Hello", " there,"]
    reply = stream.reply
    assert reply.status == "complete"
    assert reply.text == "Hello there, I am a small model."
    assert reply.metrics.completion_tokens == 7
    assert reply.metrics.done_reason == "stop"
    assert reply.metrics.tokens_per_second and reply.metrics.tokens_per_second > 0
    assert reply.ttft_ms is not None and reply.ttft_ms >= 0

    messages = services.chat.messages(reply.conversation_id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi there"),
        ("assistant", "Hello there, I am a small model."),
    ]
    run = messages[1].run
    assert run is not None
    assert (run.model, run.backend, run.host, run.status) == (
        "llama3.2:latest",
        "ollama",
        services.settings.ollama_host,
        "complete",
    )
    assert run.metrics.completion_tokens == 7
    assert run.metrics.eval_duration_ns and run.metrics.eval_duration_ns > 0
    assert run.options["temperature"] == 0.7


def test_parameters_are_sent_as_ollama_options(services: Services, fake_ollama: FakeOllama) -> None:
    params = GenerationParams(temperature=0.2, top_p=0.5, max_tokens=3, system_prompt="Be brief.")
    reply = services.chat.send(None, "Hi", "llama3.2", params).consume()
    body = fake_ollama.chat_requests()[-1]["body"]
    # num_ctx: the window fitted to the prompt and reply (tests/services/test_context_fitting.py)
    assert body["options"] == {"temperature": 0.2, "top_p": 0.5, "num_predict": 3, "num_ctx": 2048}
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert reply.metrics.completion_tokens == 3
    assert reply.metrics.done_reason == "length"


def test_history_is_sent_and_models_can_change_within_a_conversation(
    services: Services, fake_ollama: FakeOllama
) -> None:
    first = services.chat.send(None, "One", "llama3.2", PARAMS).consume()
    second = services.chat.send(first.conversation_id, "Two", "qwen3:4b", PARAMS).consume()
    assert second.conversation_id == first.conversation_id
    sent = fake_ollama.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    runs = [m.run.model for m in services.chat.messages(first.conversation_id) if m.run]
    assert runs == ["llama3.2:latest", "qwen3:4b"]  # one name per model
    summary = services.chat.conversation(first.conversation_id)
    assert summary is not None
    assert summary.title == "One"
    assert summary.models == ["llama3.2:latest", "qwen3:4b"]


def test_unknown_model_is_refused_before_anything_is_written(services: Services) -> None:
    with pytest.raises(ModelNotFound, match="ollama pull nope"):
        services.chat.send(None, "Hi", "nope", PARAMS)
    assert table_counts(services) == (0, 0, 0)


def test_empty_message_and_bad_ids_write_nothing(services: Services) -> None:
    with pytest.raises(InvalidInput):
        services.chat.send(None, "   ", "llama3.2", PARAMS)
    with pytest.raises(InvalidInput):
        services.chat.send("../etc", "Hi", "llama3.2", PARAMS)
    assert table_counts(services) == (0, 0, 0)


def test_ollama_not_running_is_a_clear_error_and_writes_nothing(tmp_path) -> None:
    settings = Settings(
        ollama_host=closed_port_url(), db_path=tmp_path / "c.duckdb", port=0, embedded=False
    )
    down = open_services(settings)
    try:
        with pytest.raises(BackendUnavailable, match="ollama serve"):
            down.chat.send(None, "Hi", "llama3.2", PARAMS)
        listing = down.registry.list_models()
        assert listing.models == [] and "ollama serve" in listing.unreachable[settings.ollama_host]
        assert table_counts(down) == (0, 0, 0)
    finally:
        down.close()


def test_server_dying_between_listing_and_chat_stores_an_error(
    services: Services, fake_ollama
) -> None:
    services.registry.list_models()  # listed while up: the send routes to it from the cache
    fake_ollama.stop()  # the request, sent while the turn commits, meets a raw ConnectError
    reply = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
    assert reply.status == "error"
    assert "ollama serve" in (reply.error or "")
    messages = services.chat.messages(reply.conversation_id)
    assert messages[0].content == "Hi"
    assert messages[1].run is not None and messages[1].run.status == "error"


def test_mid_stream_error_keeps_partial_text(services: Services, fake_ollama: FakeOllama) -> None:
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three four", fail_after=2))
    reply = services.chat.send(None, "Hi", "flaky", PARAMS).consume()
    assert reply.status == "error"
    assert "error was encountered" in (reply.error or "")
    assert reply.text == "one two"
    stored = services.chat.messages(reply.conversation_id)[1]
    assert stored.content == "one two"
    assert stored.run is not None and stored.run.error == reply.error


def test_closing_the_stream_stores_a_stopped_reply_and_cancels(services, fake_ollama) -> None:
    fake_ollama.models.append(FakeModel("slow:latest", reply="a b c d e f g h", token_delay=0.2))
    stream = services.chat.send(None, "Hi", "slow", PARAMS)
    iterator = iter(stream)
    assert next(iterator) == "a"
    assert next(iterator) == " b"
    stream.close()
    assert stream.reply.status == "stopped"
    stored = services.chat.messages(stream.reply.conversation_id)[1]
    assert stored.content == "a b"
    assert stored.run is not None and stored.run.status == "stopped"
    deadline = time.monotonic() + 3
    while fake_ollama.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_ollama.cancelled == 1  # the server saw the stream closed


def test_streaming_text_is_checkpointed(services, fake_ollama, monkeypatch) -> None:
    monkeypatch.setattr("chatcore.chat.CHECKPOINT_SECONDS", 0.1)
    fake_ollama.models.append(FakeModel("slow:latest", reply="a b c d e f", token_delay=0.15))
    stream = services.chat.send(None, "Hi", "slow", PARAMS)
    iterator = iter(stream)
    for _ in range(4):
        next(iterator)
    with services.db.cursor() as cur:
        stored = cur.execute(
            "SELECT content FROM messages WHERE id = ?", [stream.reply.message_id]
        ).fetchone()[0]
    assert stored.startswith("a b")  # saved while still streaming
    stream.close()


def test_a_stalled_stream_is_checkpointed_while_it_waits(
    services, fake_ollama, monkeypatch
) -> None:
    monkeypatch.setattr("chatcore.chat.CHECKPOINT_SECONDS", 0.1)
    fake_ollama.models.append(FakeModel("stalling:latest", reply="first second", token_delay=3))
    stream = services.chat.send(None, "Hi", "stalling", PARAMS)
    iterator = iter(stream)
    assert next(iterator) == "first"
    time.sleep(0.5)  # the next token is seconds away
    with services.db.cursor() as cur:
        stored = cur.execute(
            "SELECT content FROM messages WHERE id = ?", [stream.reply.message_id]
        ).fetchone()[0]
    assert stored == "first"
    stream.close()


def test_regenerate_replaces_the_visible_reply_and_keeps_the_old_one(services: Services) -> None:
    first = services.chat.send(None, "Hi", "llama3.2", PARAMS).consume()
    again = services.chat.regenerate(first.conversation_id, "qwen3:4b", PARAMS).consume()
    visible = services.chat.messages(first.conversation_id)
    assert [m.role for m in visible] == ["user", "assistant"]
    assert visible[1].content == "Bonjour from Qwen."
    assert visible[1].run is not None and visible[1].run.id == again.run_id
    assert table_counts(services)[2] == 2  # both runs stored


def test_regenerate_without_a_reply_is_refused(services: Services) -> None:
    with pytest.raises(InvalidInput):
        services.chat.regenerate("nothing-here", "llama3.2", PARAMS)


def test_recent_conversations_newest_first(services: Services) -> None:
    a = services.chat.send(None, "First chat", "llama3.2", PARAMS).consume()
    b = services.chat.send(None, "Second chat", "llama3.2", PARAMS).consume()
    services.chat.send(a.conversation_id, "More", "llama3.2", PARAMS).consume()
    recent = services.chat.recent_conversations()
    assert [c.id for c in recent] == [a.conversation_id, b.conversation_id]
    assert recent[0].message_count == 4


def test_titles_come_from_the_first_message() -> None:
    assert title_from("  Hello\n world ") == "Hello world"
    assert len(title_from("x" * 200)) == 60


def test_model_list_reports_details(services: Services) -> None:
    listing = services.registry.list_models()
    llama = next(m for m in listing.models if m.name == "llama3.2:latest")
    assert (llama.backend, llama.family, llama.quantization) == ("ollama", "llama", "Q4_K_M")
    assert listing.unreachable == {}


def test_options_are_stored_as_json(services: Services) -> None:
    reply = services.chat.send(None, "Hi", "llama3.2", GenerationParams(seed=7)).consume()
    with services.db.cursor() as cur:
        options = cur.execute("SELECT options FROM runs WHERE id = ?", [reply.run_id]).fetchone()[0]
    assert json.loads(options)["seed"] == 7


def test_the_prompt_size_is_recorded_for_context_checks(services: Services) -> None:
    params = GenerationParams(system_prompt="Be brief.")
    reply = services.chat.send(None, "Hi", "llama3.2", params).consume()
    with services.db.cursor() as cur:
        chars = cur.execute("SELECT prompt_chars FROM runs WHERE id = ?", [reply.run_id]).fetchone()
    assert chars[0] == len("Be brief.") + len("Hi")


def test_a_slow_first_load_is_waited_for(services: Services, fake_ollama: FakeOllama) -> None:
    # httpx's default timeout is 5 s; a cold model load can take minutes before the first byte.
    fake_ollama.models.append(FakeModel("cold:latest", reply="finally here", load_delay=6.0))
    reply = services.chat.send(None, "Hi", "cold", PARAMS).consume()
    assert reply.status == "complete" and reply.text == "finally here"
    assert reply.metrics.load_duration_ns is not None and reply.metrics.load_duration_ns >= 6e9
