"""Presets in the sidebar and on the Models page, and the parameters a model last ran with
coming back when it is picked again. AppTest against the loopback Ollama server and a real
DuckDB file."""

from __future__ import annotations

from chatcore.services import shared_services
from testkit.apptest import new_app
from testkit.fake_ollama import FakeOllama


def sent_options(fake: FakeOllama) -> dict:
    return fake.chat_requests()[-1]["body"]["options"]


def test_a_preset_saved_on_the_models_page_is_picked_in_the_sidebar(
    app_env, fake_ollama: FakeOllama
) -> None:
    at = new_app().run()
    at.switch_page("pages/models.py").run()
    # AppTest runs a switched-to page without the entry script's sidebar (and forgets its
    # widgets' values): the sidebar's values go into the session in the same run as the click.
    at.text_input(key="new-preset-name").set_value("One-liner")
    for key, value in {
        "temperature": 0.2,
        "max_tokens": 64,
        "system_prompt": "Answer in one line.",
        "context_size": 4096,
    }.items():
        at.session_state[key] = value
    at.button(key="save-preset").click().run()
    assert not at.exception
    assert [p.name for p in shared_services().presets.list()] == ["One-liner"]
    saved = shared_services().presets.get("One-liner").params
    assert (saved["temperature"], saved["max_tokens"], saved["context_size"]) == (0.2, 64, 4096)

    # Back to other values, then the preset brings its own back.
    at = new_app().run()
    at.sidebar.slider(key="temperature").set_value(0.9).run()
    at.sidebar.text_area(key="system_prompt").set_value("").run()
    at.sidebar.selectbox(key="preset").set_value("One-liner").run()
    assert at.sidebar.slider(key="temperature").value == 0.2
    assert at.sidebar.text_area(key="system_prompt").value == "Answer in one line."
    at.chat_input[0].set_value("Hello").run()
    assert not at.exception
    options = sent_options(fake_ollama)
    assert (options["temperature"], options["num_predict"]) == (0.2, 64)
    assert options["num_ctx"] <= 4096  # the preset's context size caps the window


def test_a_preset_is_deleted_on_the_models_page(app_env) -> None:
    shared_services().presets.save("Gone soon", {"temperature": 0.4})
    at = new_app().run()
    assert "Gone soon" in at.sidebar.selectbox(key="preset").options
    at.switch_page("pages/models.py").run()
    at.selectbox(key="preset-doomed").set_value("Gone soon").run()
    at.button(key="delete-preset").click().run()
    assert not at.exception
    assert shared_services().presets.list() == []
    assert not [s for s in at.sidebar.selectbox if s.key == "preset"]


def test_a_model_picked_again_comes_with_the_parameters_it_last_ran_with(
    app_env, fake_ollama: FakeOllama
) -> None:
    at = new_app().run()
    at.sidebar.selectbox(key="model").set_value("qwen3:4b").run()
    at.sidebar.slider(key="temperature").set_value(0.15).run()
    at.sidebar.text_area(key="system_prompt").set_value("Be a pirate.").run()
    at.chat_input[0].set_value("Ahoy").run()
    at.button(key="new-chat").click().run()
    at.sidebar.selectbox(key="model").set_value("llama3.2:latest").run()
    at.sidebar.slider(key="temperature").set_value(0.8).run()
    at.sidebar.text_area(key="system_prompt").set_value("").run()
    at.chat_input[0].set_value("Hello").run()
    at.button(key="new-chat").click().run()

    at.sidebar.selectbox(key="model").set_value("qwen3:4b").run()
    assert at.sidebar.slider(key="temperature").value == 0.15
    assert at.sidebar.text_area(key="system_prompt").value == "Be a pirate."
    at.sidebar.selectbox(key="model").set_value("llama3.2:latest").run()
    assert at.sidebar.slider(key="temperature").value == 0.8
    assert at.sidebar.text_area(key="system_prompt").value == ""
    assert not at.exception
