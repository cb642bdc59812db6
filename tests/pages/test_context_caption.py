"""A conversation longer than the context window keeps answering in the Chat page, and the
reply's caption says what was left out. AppTest against the loopback Ollama server."""

from __future__ import annotations

from chatcore.params import GenerationParams
from chatcore.services import shared_services
from testkit.apptest import new_app
from testkit.fake_ollama import FakeOllama

TURN = (
    "Turn {n}: what did the merchants carry upstream in spring, and what did they bring back "
    "downstream in autumn, and which of the ferries did they trust the most with their goods?"
)


def test_a_long_chat_shows_how_many_messages_were_left_out(
    app_env, monkeypatch, fake_ollama: FakeOllama
) -> None:
    monkeypatch.setenv("CONTEXT_MAX", "2048")  # a small window: the chat soon outgrows it
    chat = shared_services().chat
    for n in range(40):
        chat.send("long", TURN.format(n=n), "llama3.2", GenerationParams()).consume()
    at = new_app()
    at.query_params["c"] = "long"
    at.run()
    at.chat_input[0].set_value("And in winter?").run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any("old messages left out to fit the 2,048-token context" in c for c in captions)
    assert fake_ollama.truncated.count(0) == len(fake_ollama.truncated)  # never a silent cut
    assert fake_ollama.chat_requests()[-1]["body"]["options"]["num_ctx"] == 2048


def test_with_summarise_the_caption_says_the_turns_were_summarised(
    app_env, monkeypatch, fake_ollama: FakeOllama
) -> None:
    monkeypatch.setenv("CONTEXT_MAX", "2048")
    monkeypatch.setenv("CONTEXT_OVERFLOW", "summarise")
    chat = shared_services().chat
    for n in range(40):
        chat.send("noted", TURN.format(n=n), "llama3.2", GenerationParams()).consume()
        chat.context.wait_for_summaries()
    at = new_app()
    at.query_params["c"] = "noted"
    at.run()
    at.chat_input[0].set_value("And in winter?").run()
    assert not at.exception
    last = [c.value for c in at.caption if "to fit the 2,048-token context" in c.value][-1]
    assert "old messages summarised to fit the 2,048-token context" in last
