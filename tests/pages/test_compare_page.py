"""The Compare page under AppTest, against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from testkit.apptest import new_app
from testkit.fake_ollama import FakeModel, FakeOllama

REPLIES = {"llama3.2:latest": "Hello there, I am a small model.", "qwen3:4b": "Bonjour from Qwen."}


def compare_page() -> AppTest:
    at = new_app().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


def subheaders(at: AppTest) -> list[str]:
    return [h.value for h in at.subheader]


def test_a_blind_round_streams_votes_and_reveals(app_env) -> None:
    at = compare_page()
    assert at.multiselect(key="compare_models").value == ["llama3.2:latest", "qwen3:4b"]
    assert at.toggle(key="compare_blind").value is True
    assert at.dataframe.len == 0  # no votes yet

    at.chat_input[0].set_value("Say hello").run()
    assert not at.exception
    assert subheaders(at)[:2] == ["Answer A", "Answer B"]
    answers = {md.value for md in at.markdown} & set(REPLIES.values())
    assert answers == set(REPLIES.values())
    captions = [c.value for c in at.caption if c.value.startswith("Answer ")]
    assert len(captions) == 2 and all("tok/s" in c for c in captions)
    assert not any(name in c for c in captions for name in REPLIES)  # blind: no names yet
    assert not [b for b in at.button if b.key and b.key.startswith("continue-")]
    qwen_label = "A" if at.columns[0].markdown[0].value == REPLIES["qwen3:4b"] else "B"
    assert f"Answer {qwen_label} mentions “qwen”: this vote may not be blind." in [
        c.value.split(" ", 1)[1] for c in at.caption
    ]

    at.button(key="vote-best-A").click().run()
    assert not at.exception
    verdict = at.success[0].value
    assert verdict.startswith("You voted: A is better.")
    a_model = verdict.split("A was ")[1].split(",")[0]
    assert a_model in REPLIES
    assert [h for h in subheaders(at) if h.startswith(("A ·", "B ·"))] == [
        f"A · {a_model}",
        f"B · {next(m for m in REPLIES if m != a_model)}",
    ]
    board = at.dataframe[0].value
    assert list(board["Model"]) == [a_model, next(m for m in REPLIES if m != a_model)]
    assert list(board["Votes"]) == [1, 1] and list(board["Rating"]) == [1016, 984]


def test_open_round_names_its_columns_and_continues_in_chat(app_env) -> None:
    at = compare_page()
    at.toggle(key="compare_blind").set_value(False).run()
    at.chat_input[0].set_value("Say hello").run()
    assert not at.exception
    assert subheaders(at)[:2] == ["llama3.2:latest", "qwen3:4b"]
    at.button(key="continue-B").click().run()
    assert not at.exception
    # the Chat page shows qwen's conversation, with qwen picked to carry it on
    assert at.session_state["model"] == "qwen3:4b"
    assert [m.markdown[0].value for m in at.chat_message] == ["Say hello", REPLIES["qwen3:4b"]]


def test_a_failing_model_shows_its_error_in_its_own_column(
    app_env, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    at = compare_page()
    at.toggle(key="compare_blind").set_value(False)
    at.multiselect(key="compare_models").set_value(["flaky:latest", "qwen3:4b"]).run()
    at.chat_input[0].set_value("Hi").run()
    assert not at.exception
    flaky, qwen = at.columns[0], at.columns[1]
    assert flaky.subheader[0].value == "flaky:latest"
    assert flaky.markdown[0].value == "one"
    assert "error was encountered" in flaky.error[0].value
    assert qwen.subheader[0].value == "qwen3:4b"
    assert qwen.markdown[0].value == REPLIES["qwen3:4b"] and len(qwen.error) == 0
    assert qwen.caption[0].value.startswith("qwen3:4b · 3 tokens")


def test_fewer_than_two_models_cannot_be_sent(app_env) -> None:
    at = compare_page()
    at.multiselect(key="compare_models").set_value(["qwen3:4b"]).run()
    assert at.chat_input[0].disabled


def test_ollama_down_leaves_nothing_to_compare(monkeypatch, db_path) -> None:
    from testkit.apptest import ROOT, release_cached_services
    from testkit.ports import closed_port_url

    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.setenv("EMBEDDED", "0")  # the embedded model alone would be one, not two
    monkeypatch.chdir(ROOT)
    try:
        at = compare_page()
        assert at.multiselect(key="compare_models").value == []
        assert at.chat_input[0].disabled
    finally:
        release_cached_services()


def test_thinking_stays_hidden_in_a_blind_round_until_the_reveal(
    app_env, fake_ollama: FakeOllama
) -> None:
    qwen = fake_ollama.model("qwen3:4b")
    assert qwen is not None
    qwen.thinking, qwen.capabilities = "I am Qwen, thinking hard.", ("completion", "thinking")
    at = compare_page()
    at.chat_input[0].set_value("Say hello").run()
    assert not at.exception
    shown = [md.value for md in at.markdown] + [e.label for e in at.expander]
    assert not any("I am Qwen" in text for text in shown)  # blind: the reasoning names it
    assert any("reveal" in c.value and "Thinking" in c.value for c in at.caption)

    at.button(key="vote-tie-").click().run()
    assert not at.exception
    assert any(e.label.startswith("Thought for") for e in at.expander)
    assert any("I am Qwen, thinking hard." in md.value for md in at.markdown)


def test_a_failed_answer_leaves_nothing_to_vote_on(app_env, fake_ollama: FakeOllama) -> None:
    fake_ollama.models.append(FakeModel("flaky:latest", reply="one two three", fail_after=1))
    at = compare_page()
    at.multiselect(key="compare_models").set_value(["flaky:latest", "qwen3:4b"]).run()
    at.chat_input[0].set_value("Hi").run()
    assert not at.exception
    assert not [b for b in at.button if (b.key or "").startswith("vote-")]
    assert any("nothing to vote on" in c.value for c in at.caption)


def test_the_page_says_why_the_prompt_box_is_disabled(app_env) -> None:
    at = compare_page()
    assert not at.info
    at.multiselect(key="compare_models").set_value(["qwen3:4b"]).run()
    assert at.chat_input[0].disabled
    assert "at least 2 models" in at.info[0].value


def test_a_round_survives_a_reload(app_env) -> None:
    at = compare_page()
    at.chat_input[0].set_value("Say hello").run()
    round_id = at.query_params["round"]
    again = new_app().run()  # a reload: a new session on the same address
    again.switch_page("pages/compare.py")
    again.query_params["round"] = round_id
    again.run()
    assert not again.exception
    assert again.chat_message[0].markdown[0].value == "Say hello"
    assert [b for b in again.button if (b.key or "").startswith("vote-")]


def test_models_working_together_are_one_entry_voted_and_ranked(app_env) -> None:
    """Issue 19, item 4: a collaboration is picked on the Compare page beside a single model."""
    fusion = "fusion(llama3.2:latest + qwen3:4b -> qwen3:4b)"
    at = compare_page()
    at.toggle(key="compare_blind").set_value(False)
    at.radio(key="collab_pattern").set_value("fusion").run()
    assert at.multiselect(key="collab_answering").value == ["llama3.2:latest", "qwen3:4b"]
    at.selectbox(key="collab_synthesiser").set_value("qwen3:4b").run()
    assert not at.button(key="collab_add").disabled  # two picked: room for two more
    at.multiselect(key="compare_models").set_value(["llama3.2:latest"]).run()
    at.button(key="collab_add").click().run()
    assert not at.exception
    assert at.multiselect(key="compare_models").value == ["llama3.2:latest", fusion]

    at.chat_input[0].set_value("Say hello").run()
    assert not at.exception
    single, together = at.columns[0], at.columns[1]
    assert single.subheader[0].value == "llama3.2:latest"
    assert together.subheader[0].value == fusion
    assert together.markdown[0].value == REPLIES["qwen3:4b"]  # the synthesis is the answer
    steps = [c.value for c in together.caption]
    assert steps[0].startswith("qwen3:4b · ")  # who wrote the answer, and how fast
    assert steps[1].startswith("answer: ") and steps[1].endswith("synthesis: qwen3:4b")

    at.button(key="vote-best-B").click().run()
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board["Model"]) == [fusion, "llama3.2:latest"]
