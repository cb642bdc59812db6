"""The Models page under AppTest, with two loopback Ollama servers as two hosts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from chatcore.services import shared_services
from testkit.apptest import ROOT, new_app, release_cached_services
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.ports import closed_port_url


@pytest.fixture
def hosts(monkeypatch, db_path: Path) -> Iterator[tuple[FakeOllama, FakeOllama]]:
    a = FakeOllama(
        [FakeModel("llama3.2:latest"), FakeModel("qwen3:4b", family="qwen3")], version="0.33.0"
    ).start()
    b = FakeOllama(
        [
            FakeModel(
                "gemma3:1b",
                family="gemma3",
                capabilities=("completion", "vision"),
                context_length=32768,
                parameters="temperature 0.4\ntop_p 0.75\nnum_predict 128",
                system="You are terse.",
            )
        ],
        library=[FakeModel("phi4:latest", family="phi3")],
        version="0.34.1",
    ).start()
    monkeypatch.setenv("OLLAMA_HOST", a.url)
    monkeypatch.setenv("OLLAMA_HOSTS", b.url)
    monkeypatch.setenv("CHAT_DB", str(db_path))
    monkeypatch.setenv("EMBEDDED", "0")  # Ollama's hosts only, without the embedded model
    monkeypatch.chdir(ROOT)
    yield a, b
    release_cached_services()
    a.stop()
    b.stop()


def models_page() -> AppTest:
    at = new_app().run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    return at


def picker_options() -> list[str]:
    """The Chat page's model picker, in a new session of the same process."""
    return new_app().run().selectbox(key="model").options


def table(at: AppTest, column: str) -> list:  # type: ignore[type-arg]
    frame = next(d.value for d in at.dataframe if column in d.value.columns)
    return list(frame[column])


def test_hosts_show_reachability_version_and_latency(hosts) -> None:
    a, b = hosts
    at = models_page()
    assert table(at, "host") == [a.url, b.url]
    assert table(at, "version") == ["0.33.0", "0.34.1"]
    assert all(latency >= 0 for latency in table(at, "latency (ms)"))
    assert table(at, "model") == ["llama3.2:latest", "qwen3:4b"]  # the first host's models
    assert table(at, "size on disk") == ["2.0 GB", "2.0 GB"]
    assert picker_options() == [
        f"llama3.2:latest · {a.url.removeprefix('http://')}",
        f"qwen3:4b · {a.url.removeprefix('http://')}",
        f"gemma3:1b · {b.url.removeprefix('http://')}",
    ]


def test_model_details_and_using_its_defaults_in_the_sidebar(hosts) -> None:
    _, b = hosts
    at = models_page()
    at.selectbox(key="models-host").select(b.url).run()
    assert "vision" in at.markdown[0].value and "tools" not in at.markdown[0].value
    assert any("32,768" in c.value for c in at.caption)
    assert table(at, "parameter") == ["temperature", "top_p", "num_predict"]
    at.button(key="use-defaults").click().run()
    assert not at.exception
    state = at.session_state
    assert (state["temperature"], state["top_p"], state["max_tokens"]) == (0.4, 0.75, 128)
    assert state["system_prompt"] == "You are terse."
    assert state["model"] == "gemma3:1b"


def pulls_ended(timeout: float = 20) -> None:
    """Wait for every pull of the app's process (they run in the background) to end."""
    pulls = shared_services().pulls
    deadline = time.monotonic() + timeout
    while pulls.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pulls.running()


def test_pull_shows_progress_and_the_model_reaches_the_picker(hosts) -> None:
    _, b = hosts
    at = models_page()
    at.selectbox(key="models-host").select(b.url).run()
    at.text_input(key="pull-name").input("phi4").run()
    at.button(key="pull").click().run()
    assert not at.exception
    told = [s.value for s in at.success]  # a quick pull may end within this very run
    pulls_ended()
    at.run()
    told += [s.value for s in at.success]
    assert told == [f"Pulled phi4 onto {b.url}."]
    assert "phi4:latest" in table(at, "model")
    assert f"phi4:latest · {b.url.removeprefix('http://')}" in picker_options()


def test_a_pull_error_is_shown(hosts) -> None:
    at = models_page()
    at.text_input(key="pull-name").input("no-such-model").run()
    at.button(key="pull").click().run()
    told = [e.value for e in at.error]
    pulls_ended()
    at.run()
    assert not at.exception
    told += [e.value for e in at.error]
    assert len(told) == 1 and "file does not exist" in told[0]


def test_clicking_elsewhere_or_leaving_does_not_cancel_a_pull(hosts) -> None:
    a, _ = hosts
    a.library.append(FakeModel("phi4:latest"))
    a.pull_delay, a.pull_steps = 0.2, 15  # some seconds: it runs through the clicks below
    at = models_page()
    at.text_input(key="pull-name").input("phi4").run()
    at.button(key="pull").click().run()
    assert not at.exception
    [job] = shared_services().pulls.running()
    cancel_keys = [b.key for b in at.button if (b.key or "").startswith("cancel-pull-")]
    assert cancel_keys == [f"cancel-pull-{job.id}"]  # its progress and Cancel on the page
    at.button(key="models-refresh").click().run()  # another button on the page
    at.switch_page("pages/stats.py").run()  # another page
    assert not at.exception
    # every page's sidebar shows it (AppTest draws the sidebar when run from the entry script)
    bars = [p.proto.text for p in new_app().run().sidebar.get("progress")]
    assert any("Pulling phi4" in text for text in bars), bars
    pulls_ended()
    assert shared_services().pulls.get(job.id).state == "done"
    assert a.cancelled == 0 and a.model("phi4:latest") is not None
    at.switch_page("pages/models.py").run()
    assert at.success[0].value == f"Pulled phi4 onto {a.url}."  # told once, on coming back


def test_cancel_stops_a_pull(hosts) -> None:
    a, _ = hosts
    a.library.append(FakeModel("big:latest"))
    a.pull_delay = 0.1
    at = models_page()
    at.text_input(key="pull-name").input("big").run()
    at.button(key="pull").click().run()
    [job] = shared_services().pulls.running()
    at.button(key=f"cancel-pull-{job.id}").click().run()
    told = [i.value for i in at.info]
    pulls_ended()
    at.run()
    told += [i.value for i in at.info]
    assert told == ["Pull of big cancelled."]
    assert a.model("big:latest") is None


def test_delete_asks_for_confirmation(hosts) -> None:
    a, _ = hosts
    at = models_page()
    at.selectbox(key="models-model").select("qwen3:4b").run()
    at.button(key="delete").click().run()
    assert "Delete qwen3:4b" in at.warning[0].value
    assert a.model("qwen3:4b") is not None  # nothing yet
    at.button(key="confirm-delete-yes").click().run()
    assert not at.exception
    assert a.model("qwen3:4b") is None
    assert at.success[0].value == f"Deleted qwen3:4b from {a.url}."
    assert table(at, "model") == ["llama3.2:latest"]


def test_preload_and_unload(hosts) -> None:
    a, _ = hosts
    at = models_page()
    at.button(key="preload").click().run()
    assert table(at, "VRAM") == ["1.0 GB"]
    assert table(at, "unloads")[0].startswith("in 29 min")
    at.button(key="unload-llama3.2:latest").click().run()
    assert not at.exception
    assert not any("VRAM" in d.value.columns for d in at.dataframe)
    assert a.chat_requests()[-1]["body"]["keep_alive"] == 0
    at.selectbox(key="keep-alive").select("-1m").run()
    at.button(key="preload").click().run()
    assert not at.error and table(at, "unloads") == ["stays loaded"]


def test_a_refused_preload_is_shown_not_raised(hosts) -> None:
    a, _ = hosts
    at = models_page()
    a.models.clear()  # gone behind the page's back
    at.button(key="preload").click().run()
    assert not at.exception
    assert len(at.error) == 2  # the details, then the preload
    assert all("not found" in e.value for e in at.error)


def test_a_host_that_is_down_does_not_break_the_page(hosts) -> None:
    a, b = hosts
    at = models_page()
    a.stop()
    at.button(key="models-refresh").click().run()
    assert not at.exception
    assert table(at, "reachable") == [False, True]
    assert any("ollama serve" in w.value for w in at.warning)
    assert table(at, "available") == [False, False]  # last seen, now unavailable
    at.selectbox(key="models-host").select(b.url).run()
    assert not at.exception and table(at, "model") == ["gemma3:1b"]


def test_add_and_remove_a_host(hosts, monkeypatch) -> None:
    b = hosts[1]
    monkeypatch.setenv("OLLAMA_HOSTS", "")
    at = models_page()
    down = closed_port_url()
    for address, accepted in (("not a host !", False), (b.url, True), (down, True)):
        at.text_input(key="new-host").input(address)
        submit(at)
        assert not at.exception
        assert bool(at.error) != accepted
    assert table(at, "host")[1:] == [b.url, down]
    assert table(at, "from")[1:] == ["added here", "added here"]
    at.button(key="remove-host").click().run()
    assert table(at, "host")[1:] == [b.url]


def submit(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Add host").click().run()


def test_an_openai_compatible_server_is_added_listed_and_reaches_the_picker(hosts) -> None:
    from testkit.fake_openai import FakeOpenAI

    served = FakeOpenAI([FakeModel("vllm/qwen3-32b")], api_key="sk-page-key-98765").start()
    try:
        at = models_page()
        at.text_input(key="new-openai-host").input(served.url)
        at.text_input(key="new-openai-key").input("sk-page-key-98765")
        next(b for b in at.button if b.label == "Add server").click().run()
        assert not at.exception and not at.error
        url = f"{served.url}/v1"
        assert table(at, "host")[-1] == url
        assert table(at, "speaks")[-1] == "OpenAI API"
        assert table(at, "API key")[-1] == "…8765"  # never the whole key
        assert table(at, "reachable")[-1]
        assert at.selectbox(key="models-host").value == url
        assert table(at, "model") == ["vllm/qwen3-32b"]
        assert not [b for b in at.button if b.label == "Pull"]  # Ollama's hosts only
        assert "vllm/qwen3-32b · " + url.removeprefix("http://") in picker_options()
    finally:
        served.stop()
