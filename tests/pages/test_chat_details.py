"""Small things on the Chat page (issue 12, item 10): a user's line breaks kept, the notice of a
server that does not answer shown while true and gone when it is back, failures told in plain
words with the detail left in the log. AppTest against loopback Ollama servers, a real DuckDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.apptest import new_app, release_cached_services
from testkit.fake_ollama import FakeModel, FakeOllama


def test_a_two_line_message_keeps_its_line_break(app_env) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("First line\nSecond line").run()
    assert at.chat_message[0].markdown[0].value == "First line  \nSecond line"
    reopened = new_app()  # and when the conversation is drawn from the database
    reopened.query_params["c"] = at.query_params["c"]
    reopened.run()
    assert reopened.chat_message[0].markdown[0].value == "First line  \nSecond line"


def test_a_lost_connection_is_told_in_plain_words_and_detailed_in_the_log(
    app_env, fake_ollama: FakeOllama, db_path: Path
) -> None:
    slow = FakeModel("slow:latest", reply="one two three four five six", token_delay=0.3)
    fake_ollama.models.insert(0, slow)
    at = new_app().run()
    threading.Timer(0.5, fake_ollama.stop).start()  # Ollama exits in the middle of the reply
    at.chat_input[0].set_value("Hi").run()
    shown = at.chat_message[1].error[0].value
    assert "Lost the connection to Ollama" in shown and "stopped answering" in shown
    assert "Error" not in shown.split("Log id")[0]  # no exception class names on the page
    lines = (db_path.parent / "dashboard.log").read_text().splitlines()
    [run] = [json.loads(line) for line in lines if '"event": "run"' in line]
    assert run["cause"].split(":")[0].endswith("Error")  # e.g. RemoteProtocolError: ...


@pytest.fixture
def hosts(monkeypatch, db_path: Path) -> Iterator[list[FakeOllama]]:
    phi = FakeOllama([FakeModel("phi3:latest", reply="Phi here.")]).start()
    llama = FakeOllama([FakeModel("llama2:latest", reply="Llama here.")]).start()
    monkeypatch.setenv("OLLAMA_HOSTS", f"{phi.url},{llama.url}")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("EMBEDDED", "0")
    monkeypatch.setenv("CHAT_DB", str(db_path))
    from testkit.apptest import ROOT

    monkeypatch.chdir(ROOT)
    servers = [phi, llama]
    yield servers
    for server in servers:
        server.stop()
    release_cached_services()


def test_the_notice_of_a_server_down_stays_while_true_and_goes_when_it_is_back(hosts) -> None:
    phi, _ = hosts
    phi.stop()
    at = new_app().run()
    assert at.selectbox(key="model").value == "llama2:latest"
    [notice] = at.sidebar.warning
    at.run()  # any click: still said, once
    assert [w.value for w in at.sidebar.warning] == [notice.value]
    hosts[0] = FakeOllama([FakeModel("phi3:latest")], port=int(phi.url.rsplit(":", 1)[1])).start()
    next(b for b in at.sidebar.button if b.label == "Refresh models").click().run()
    assert not at.sidebar.warning
