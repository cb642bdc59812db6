"""The sidebar lists conversations, not clutter (issue 12, item 8): a Compare round is one entry
titled with its models, and older conversations are reachable past the newest 15. AppTest against
the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from testkit.apptest import new_app, sidebar_conversations


def test_a_compare_round_is_one_entry_titled_with_its_models(app_env) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("A plain chat").run()
    at.switch_page("pages/compare.py").run()
    at.chat_input[0].set_value("Guess who").run()  # blind: the sidebar must not tell
    at.toggle(key="compare_blind").set_value(False).run()
    at.chat_input[0].set_value("Say hello").run()
    assert not at.exception
    at = new_app().run()  # the sidebar as the next page drawn shows it
    assert sidebar_conversations(at) == [
        "⚖ Say hello · llama3.2:latest vs qwen3:4b",
        "⚖ Guess who · 2 models, blind",
        "A plain chat",
    ]


def test_more_reaches_past_the_newest_fifteen(app_env) -> None:
    at = new_app().run()
    for number in range(17):
        at.button(key="new-chat").click().run()
        at.chat_input[0].set_value(f"Topic {number}").run()
    listed = sidebar_conversations(at)
    assert len(listed) == 15 and listed[0] == "Topic 16" and "Topic 0" not in listed
    at.sidebar.button(key="sidebar-more").click().run()
    assert sidebar_conversations(at)[-2:] == ["Topic 1", "Topic 0"]
    assert not [b for b in at.sidebar.button if b.key == "sidebar-more"]  # nothing more to show
