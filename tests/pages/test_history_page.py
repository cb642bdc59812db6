"""The History page under AppTest, on a real DuckDB file filled through the real send path."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

import ui
from chatcore.config import load_settings
from chatcore.params import GenerationParams
from chatcore.services import open_services
from testkit.apptest import new_app
from testkit.fake_ollama import FakeOllama
from testkit.history_data import varied_history


def filled(fake_ollama: FakeOllama) -> None:
    """The fixture history, written before the app opens the database."""
    services = open_services(load_settings())
    try:
        varied_history(services, fake_ollama)
    finally:
        services.close()


def history_page() -> AppTest:
    at = new_app()
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    return at.button(key=key)


def test_the_table_lists_conversations_newest_first(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    table = at.dataframe[0].value
    assert list(table["Title"]) == [
        "Ünïcode and 'quotes' \"here\"",
        "A story about a Quokka please",
        "Tell me about otters",
    ]
    assert list(table["Messages"]) == [2, 2, 5]  # on every branch
    assert table["Models"].iloc[2] == "llama3.2:latest, qwen3:4b"

    at.selectbox(key="history-sort").select("messages").run()
    at.toggle(key="history-descending").set_value(False).run()
    assert list(at.dataframe[0].value["Messages"]) == [2, 2, 5]
    at.multiselect(key="history-models").select("qwen3:4b").run()
    assert list(at.dataframe[0].value["Title"]) == ["Tell me about otters"]


def test_search_opens_a_conversation_with_its_metrics(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    at.text_input(key="history-search").input("quokka").run()
    assert [b.label for b in at.button if b.key and b.key.startswith("hit-")] == [
        "A story about a Quokka please"
    ]
    hits = [m.value for m in at.markdown if "matching message" in m.value]
    assert len(hits) == 1 and hits[0].endswith("  \nA story about a **Quokka** please")
    assert "1 matching message\\(s\\)" in hits[0]  # its line about it, in the same element
    button(at, "hit-beta").click().run()
    assert not at.exception
    assert at.title[0].value == "A story about a Quokka please"
    assert [m.markdown[0].value for m in at.chat_message] == [
        "A story about a Quokka please",
        "Hello",
    ]
    assert at.chat_message[1].caption[0].value.endswith("stopped")
    button(at, "history-back").click().run()  # back to the results, the search kept
    assert at.text_input(key="history-search").value == "quokka"
    assert [b.key for b in at.button if b.key and b.key.startswith("hit-")] == ["hit-beta"]


def test_rename_then_continue_in_chat(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    at.text_input(key="history-search").input("otters").run()
    button(at, "hit-alpha").click().run()
    at.text_input(key="history-title").input("Otters and beavers")
    at.button[[b.label for b in at.button].index("Rename")].click().run()
    assert not at.exception
    assert at.title[0].value == "Otters and beavers"

    button(at, "history-continue").click().run()
    assert not at.exception
    assert at.session_state["conversation_id"] == "alpha"
    assert [m.markdown[0].value for m in at.chat_message][-1] == "Hello there, I am a small model."
    assert at.chat_input[0] is not None  # the Chat page, ready to continue


def test_delete_one_asks_first(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    at.text_input(key="history-search").input("otters").run()
    button(at, "hit-alpha").click().run()
    button(at, "history-delete-one-ask").click().run()
    assert "can't be undone" in at.warning[0].value
    button(at, "history-delete-one-no").click().run()
    assert ui.services().history.open("alpha") is not None
    button(at, "history-delete-one-ask").click().run()
    button(at, "history-delete-one-yes").click().run()
    assert not at.exception
    assert ui.services().history.open("alpha") is None
    assert at.title[0].value == "History"
    at.text_input(key="history-search").input("").run()
    assert "Tell me about otters" not in list(at.dataframe[0].value["Title"])


def test_delete_several_selected_rows(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    key = at.dataframe[0].key
    at.session_state[key] = {"selection": {"rows": [0, 2], "columns": [], "cells": []}}
    at.run()
    assert any(m.value == "**2 selected**" for m in at.markdown)
    button(at, "history-delete-selected-ask").click().run()
    assert "these 2 conversations" in at.warning[0].value
    button(at, "history-delete-selected-yes").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["Title"]) == ["A story about a Quokka please"]


def test_an_empty_history_says_what_will_appear(app_env) -> None:
    at = history_page()
    assert "appear here" in at.info[0].value


def test_search_finds_text_on_another_branch_and_opens_that_branch(
    app_env, fake_ollama: FakeOllama
) -> None:
    filled(fake_ollama)  # alpha's second reply was regenerated: Qwen's answer is on a side branch
    at = history_page()
    at.text_input(key="history-search").input("bonjour").run()
    button(at, "hit-alpha").click().run()
    assert [m.markdown[0].value for m in at.chat_message][-1] == "Bonjour from Qwen."


def test_a_search_hit_jumps_to_its_message_in_chat(app_env, fake_ollama: FakeOllama) -> None:
    filled(fake_ollama)
    at = history_page()
    at.text_input(key="history-search").input("otters").run()
    button(at, "jump-alpha").click().run()
    assert not at.exception, at.exception
    assert at.query_params["c"] == ["alpha"] or at.query_params["c"] == "alpha"
    assert any(c.value == "Found by your search" for c in at.get("caption"))
    assert at.chat_message[0].markdown[0].value == "Tell me about otters"


def test_many_hits_are_drawn_ten_at_a_time(app_env, fake_ollama: FakeOllama) -> None:
    services = open_services(load_settings())
    try:
        for n in range(23):
            services.chat.send(
                f"walrus-{n:02d}", f"Walrus fact {n}", "llama3.2", GenerationParams()
            ).consume()
    finally:
        services.close()
    at = history_page()
    at.text_input(key="history-search").input("walrus").run()

    def hits() -> list[str]:
        return [b.key for b in at.button if b.key and b.key.startswith("hit-")]

    assert len(hits()) == 10 and hits()[0] == "hit-walrus-22"  # the most recent first
    button(at, "history-more-hits").click().run()
    assert len(hits()) == 20
    button(at, "history-more-hits").click().run()
    assert len(hits()) == 23 and not [b for b in at.button if b.key == "history-more-hits"]
    at.text_input(key="history-search").input("walrus fact 1").run()  # a new search: ten again
    assert len(hits()) == 10
