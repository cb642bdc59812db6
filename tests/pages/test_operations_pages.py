"""Operations on the pages under AppTest: errors carry their log id, backups on the History page,
and a damaged database at start met with the newest backup."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from chatcore.backups import list_backups
from chatcore.config import load_settings
from chatcore.logs import LOG_FILE_NAME
from chatcore.services import open_services
from testkit.apptest import new_app, release_cached_services
from testkit.fake_ollama import FakeModel, FakeOllama


def test_a_failed_reply_shows_the_id_of_its_line_in_the_log(
    app_env, fake_ollama: FakeOllama, db_path: Path
) -> None:
    fake_ollama.models.insert(0, FakeModel("flaky:latest", reply="one two three", fail_after=1))
    at = new_app().run()
    at.chat_input[0].set_value("Hi").run()
    assert not at.exception
    shown = at.chat_message[1].error[0].value
    assert "Log id: `" in shown
    request_id = shown.split("Log id: `")[1].split("`")[0]
    lines = [json.loads(line) for line in (db_path.parent / LOG_FILE_NAME).read_text().splitlines()]
    runs = [line for line in lines if line["event"] == "run" and line["request_id"] == request_id]
    assert len(runs) == 1 and runs[0]["status"] == "error" and runs[0]["model"] == "flaky:latest"


def test_history_backs_up_and_restores_after_a_confirmation(
    app_env, fake_ollama: FakeOllama
) -> None:
    at = new_app().run()
    at.chat_input[0].set_value("Before the backup").run()
    at.switch_page("pages/history.py").run()
    at.button(key="backup-now").click().run()
    assert not at.exception
    db_path = load_settings().db_path
    newest = list_backups(db_path)[0].name
    at.switch_page("streamlit_app.py").run()  # a new chat after the backup
    at.query_params.pop("c", None)
    at = new_app().run()
    at.chat_input[0].set_value("After the backup").run()
    at.switch_page("pages/history.py").run()
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="backup-chosen").select(newest).run()
    at.button(key="backup-restore-ask").click().run()
    assert "Replace the database with this backup?" in at.warning[0].value
    at.button(key="backup-restore-yes").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["Title"]) == ["Before the backup"]


def test_a_damaged_database_at_start_offers_the_newest_backup(app_env, db_path: Path) -> None:
    services = open_services(load_settings())
    services.chat.send("kept", "Keep me", "llama3.2", load_settings_params()).consume()
    services.backups.create()
    services.close()
    db_path.write_bytes(b"\x00garbage" * 10_000)
    st.cache_resource.clear()

    at = new_app().run()
    assert not at.exception
    assert "can't be read" in at.error[0].value
    assert db_path.read_bytes().startswith(b"\x00garbage")  # left as it was, not emptied
    at.button(key="recovery-ask").click().run()
    at.button(key="recovery-yes").click().run()
    assert not at.exception
    at = new_app().run()
    assert not at.exception and not at.error
    assert at.sidebar.button(key="conv-kept") is not None
    release_cached_services()


def load_settings_params():  # type: ignore[no-untyped-def]
    from chatcore.params import GenerationParams

    return GenerationParams()
