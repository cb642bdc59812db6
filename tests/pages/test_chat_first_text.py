"""A send draws its reply's first text before the old dialogue (issue 14), which comes after it
as the last run read it, once; the reply's slots are made as needed; the sidebar is whole. AppTest
against a loopback Ollama, a real DuckDB."""

from __future__ import annotations

from chatcore.chat import MAX_MESSAGE_CHARS
from chatcore.config import load_settings
from chatcore.services import open_services
from testkit.apptest import new_app, sidebar_conversations
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.long_conversations import conversation_document
from ui.conversation_view import WINDOW


def test_a_send_keeps_the_sidebar_choice_and_lists_its_conversation(app_env) -> None:
    at = new_app().run()
    at.slider(key="temperature").set_value(0.2)
    at.chat_input[0].set_value("A plain send").run()
    assert not at.exception, at.exception  # a widget drawn twice would be an exception
    assert at.slider(key="temperature").value == 0.2
    assert at.selectbox(key="model").value == "llama3.2:latest"
    assert sidebar_conversations(at) == ["A plain send"]
    assert [m.markdown[0].value for m in at.chat_message] == [
        "A plain send",
        "Hello there, I am a small model.",
    ]


def test_a_refused_send_still_draws_the_sidebar(app_env) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("x" * (MAX_MESSAGE_CHARS + 1)).run()
    assert not at.exception, at.exception
    assert at.error  # the refusal, with the text kept to copy
    assert at.slider(key="temperature").value == 0.7
    assert at.sidebar.button(key="new-chat")
    assert sidebar_conversations(at) == []  # nothing was written


def test_a_model_slow_to_start_gets_its_dialogue_at_once(app_env, fake_ollama: FakeOllama) -> None:
    # its first piece comes after the page stops waiting for it (ui/conversation_view.py)
    fake_ollama.models.insert(0, FakeModel("slow:latest", reply="Late but here.", load_delay=0.5))
    at = new_app().run()
    at.selectbox(key="model").select("slow:latest")
    at.chat_input[0].set_value("Take your time").run()
    assert not at.exception, at.exception
    assert [m.markdown[0].value for m in at.chat_message] == [
        "Take your time",
        "Late but here.",
    ]
    assert sidebar_conversations(at) == ["Take your time"]


def test_a_send_in_a_long_conversation_redraws_its_window_once(app_env, fake_ollama) -> None:
    services = open_services(load_settings())
    try:
        services.transfer.import_json(conversation_document([300], fake_ollama.url))
    finally:
        services.close()
    at = new_app()
    at.query_params["c"] = "size-300"
    at.run()
    for question in ("First of two", "Second of two"):
        at.chat_input[0].set_value(question).run()
        assert not at.exception, at.exception
    shown = [m.markdown[0].value for m in at.chat_message]
    assert len(shown) == WINDOW
    assert shown[-4:] == [
        "First of two",
        "Hello there, I am a small model.",
        "Second of two",
        "Hello there, I am a small model.",
    ]
