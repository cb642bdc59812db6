"""Branches on the Chat page (issue 15): edit a message and send it as a new branch, switch with
‹ ›, the open branch kept after a reload, fork into a new conversation. AppTest against the
loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from testkit.apptest import new_app


def said(at: AppTest) -> list[str]:
    return [m.markdown[0].value for m in at.chat_message]


def button(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    return at.button(key=key)


def user_message_ids(at: AppTest) -> list[int]:
    return [
        int(b.key.rsplit("-", 1)[1]) for b in at.button if (b.key or "").startswith("edit-send-")
    ]


def chat_three_turns(at: AppTest) -> AppTest:
    for text in ("one", "two", "three"):
        at.chat_input[0].set_value(text).run()
    return at


def test_edit_switch_reload_and_fork(app_env) -> None:
    at = chat_three_turns(new_app().run())
    reply = "Hello there, I am a small model."
    assert said(at) == ["one", reply, "two", reply, "three", reply]
    second = user_message_ids(at)[1]

    at.text_area(key=f"edit-text-{second}").set_value("two, edited")
    button(at, f"edit-send-{second}").click().run()  # a new branch from the first reply
    assert said(at) == ["one", reply, "two, edited", reply]
    edited = user_message_ids(at)[1]
    assert at.chat_message[2].caption[0].value == "2 / 2"

    button(at, f"branch-prev-{edited}").click().run()  # back to the first branch
    assert said(at) == ["one", reply, "two", reply, "three", reply]
    assert at.chat_message[2].caption[0].value == "1 / 2"

    reloaded = new_app()  # a reload: the conversation from the address, the branch from DuckDB
    reloaded.query_params["c"] = at.query_params["c"]
    reloaded.run()
    assert said(reloaded) == ["one", reply, "two", reply, "three", reply]

    button(reloaded, f"branch-next-{second}").click().run()
    assert said(reloaded) == ["one", reply, "two, edited", reply]

    original = reloaded.query_params["c"]
    first_reply = [b.key for b in reloaded.button if (b.key or "").startswith("fork-")][1]
    button(reloaded, first_reply).click().run()  # a new conversation holding one and its reply
    assert reloaded.query_params["c"] != original
    assert said(reloaded) == ["one", reply]
    reloaded.chat_input[0].set_value("four").run()  # and it carries on by itself
    assert said(reloaded) == ["one", reply, "four", reply]


def test_regenerate_keeps_the_old_reply_one_click_away(app_env) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("hi").run()
    at.button(key="regenerate").click().run()
    assert len(at.chat_message) == 2
    assert at.chat_message[1].caption[-1].value == "2 / 2"
    reply_id = int(
        next(b.key for b in at.button if (b.key or "").startswith("branch-prev-")).rsplit("-", 1)[1]
    )
    button(at, f"branch-prev-{reply_id}").click().run()
    assert at.chat_message[1].caption[-1].value == "1 / 2"
