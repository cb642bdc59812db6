"""The Chat page keeps its promises (issue 12): a reopened conversation carries on with its own
model and parameters, a model that stops answering is not swapped silently, and the address
names the conversation on screen. AppTest against loopback Ollama servers and a real DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.apptest import new_app, release_cached_services, sidebar_conversations
from testkit.fake_ollama import FakeModel, FakeOllama


def dialogue(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.markdown[0].value for m in at.chat_message]


def test_reopening_a_conversation_picks_its_model_and_parameters(app_env) -> None:
    at = new_app().run()
    at.selectbox(key="model").select("qwen3:4b")
    at.slider(key="temperature").set_value(0.3)
    at.number_input(key="max_tokens").set_value(77)
    at.chat_input[0].set_value("Parlons").run()
    conversation = at.query_params["c"]

    reloaded = new_app()  # a reload or a shared link
    reloaded.query_params["c"] = conversation
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.selectbox(key="model").value == "qwen3:4b"
    assert reloaded.slider(key="temperature").value == 0.3
    assert reloaded.number_input(key="max_tokens").value == 77

    fresh = new_app().run()  # a new session opens it from the sidebar
    assert fresh.selectbox(key="model").value == "llama3.2:latest"
    next(b for b in fresh.sidebar.button if b.label == "Parlons").click().run()
    assert fresh.selectbox(key="model").value == "qwen3:4b"
    assert fresh.slider(key="temperature").value == 0.3
    fresh.chat_input[0].set_value("Encore").run()
    assert dialogue(fresh)[-1] == "Bonjour from Qwen."  # continued by its own model


def test_the_address_names_the_conversation_on_screen(app_env) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("First topic").run()
    first = at.query_params["c"]
    at.button(key="new-chat").click().run()
    at.chat_input[0].set_value("Second topic").run()
    second = at.query_params["c"]
    assert dialogue(at)[0] == "Second topic"

    at.query_params["c"] = first  # what Back does: the address changes, then the page reruns
    at.run()
    assert dialogue(at)[0] == "First topic"
    at.query_params["c"] = second  # Forward
    at.run()
    assert dialogue(at)[0] == "Second topic"
    assert sidebar_conversations(at) == ["Second topic", "First topic"]


@pytest.fixture
def two_hosts(monkeypatch, db_path: Path) -> Iterator[tuple[FakeOllama, FakeOllama]]:
    phi = FakeOllama([FakeModel("phi3:latest", reply="Phi here.")]).start()
    llama = FakeOllama([FakeModel("llama2:latest", reply="Llama here.")]).start()
    monkeypatch.setenv("OLLAMA_HOSTS", f"{phi.url},{llama.url}")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("EMBEDDED", "0")
    monkeypatch.setenv("CHAT_DB", str(db_path))
    from testkit.apptest import ROOT

    monkeypatch.chdir(ROOT)
    yield phi, llama
    llama.stop()
    phi.stop()
    release_cached_services()


def test_a_model_whose_host_is_down_is_not_swapped_without_asking(two_hosts) -> None:
    phi, _llama = two_hosts
    at = new_app().run()
    at.selectbox(key="model").select("phi3:latest")
    at.chat_input[0].set_value("Hello phi").run()
    conversation = at.query_params["c"]
    phi.stop()
    release_cached_services()  # a later visit: the listing is asked again

    back = new_app()
    back.query_params["c"] = conversation
    back.run()
    assert not back.exception
    assert back.selectbox(key="model").value == "phi3:latest"  # not llama2, silently
    [warning] = back.main.warning
    assert "phi3:latest" in warning.value and "not answering" in warning.value
    assert back.chat_input[0].disabled  # nothing is sent to another model unasked
    swap = next(b for b in back.button if b.label.startswith("Answer with llama2:latest"))
    swap.click().run()
    assert back.selectbox(key="model").value == "llama2:latest"
    assert not back.main.warning and not back.chat_input[0].disabled
    assert "Meanwhile you are chatting with" in back.sidebar.warning[0].value  # phi3's host, down
    back.chat_input[0].set_value("Then you, llama").run()
    assert dialogue(back)[-1] == "Llama here."
