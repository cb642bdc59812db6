"""The Chat page draws a bounded window of a long conversation, earlier messages on demand."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from chatcore.config import load_settings
from chatcore.services import open_services
from testkit.apptest import new_app
from testkit.fake_ollama import FakeOllama
from testkit.long_conversations import conversation_document
from ui.conversation_view import FOCUS_KEY, WINDOW


def imported(fake_ollama: FakeOllama, sizes: list[int]) -> None:
    services = open_services(load_settings())
    try:
        services.transfer.import_json(conversation_document(sizes, fake_ollama.url))
    finally:
        services.close()


def opened(conversation_id: str) -> AppTest:
    at = new_app()
    at.query_params["c"] = conversation_id
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> list[str]:
    return [message.markdown[0].value for message in at.chat_message]


def test_a_thousand_messages_draw_only_the_latest_window(app_env, fake_ollama) -> None:
    imported(fake_ollama, [1_000])
    at = opened("size-1000")
    shown = texts(at)
    assert len(shown) == WINDOW
    assert shown[-1].startswith("Answer 499.") and shown[0] == "Question 490: tell me more."
    assert at.button(key="chat-show-earlier").label == "Show earlier messages (980 not shown)"

    at.button(key="chat-show-earlier").click().run()
    shown = texts(at)
    assert len(shown) == 2 * WINDOW and shown[0] == "Question 480: tell me more."
    assert shown[-1].startswith("Answer 499.")  # still ending with the latest


def test_a_short_conversation_is_drawn_whole_without_the_button(app_env, fake_ollama) -> None:
    imported(fake_ollama, [6])
    at = opened("size-6")
    assert len(at.chat_message) == 6
    assert not [b for b in at.button if b.key == "chat-show-earlier"]


def test_a_send_in_a_long_conversation_keeps_the_window_bounded(app_env, fake_ollama) -> None:
    imported(fake_ollama, [1_000])
    at = opened("size-1000")
    at.chat_input[0].set_value("One more question").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert len(shown) == WINDOW
    assert shown[-2] == "One more question" and shown[-1] == "Hello there, I am a small model."


def test_a_jump_opens_the_window_at_the_message_found(app_env, fake_ollama) -> None:
    imported(fake_ollama, [1_000])
    at = opened("size-1000")
    target = 1 + 2 * 100 + 1  # import ids start at 1: the reply "Answer 100."
    at.session_state[FOCUS_KEY] = ("size-1000", target)  # what History's jump button sets
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert shown[0] == "Question 100: tell me more." and shown[1].startswith("Answer 100.")
    assert len(shown) == WINDOW
    found = at.get("caption")
    assert any(c.value == "Found by your search" for c in found)

    at.button(key="chat-back-to-latest").click().run()
    assert texts(at)[-1].startswith("Answer 499.")
    assert not [c for c in at.get("caption") if c.value == "Found by your search"]


def test_a_send_while_reading_a_found_message_returns_to_the_latest(app_env, fake_ollama) -> None:
    imported(fake_ollama, [1_000])
    at = opened("size-1000")
    at.session_state[FOCUS_KEY] = ("size-1000", 202)
    at.run()
    assert texts(at)[0] == "Question 100: tell me more."
    at.chat_input[0].set_value("Back to now").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert shown[-2:] == ["Back to now", "Hello there, I am a small model."]
    assert len(shown) == WINDOW
