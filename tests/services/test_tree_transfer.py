"""Export and import of message trees: the whole tree round-trips exactly (branches, the open
branch, forks); Markdown is the open branch; files from before trees import as one branch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import transfer
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeOllama
from testkit.history_data import table_rows

PARAMS = GenerationParams()
MODEL = "llama3.2"


@pytest.fixture
def other(tmp_path: Path, fake_ollama: FakeOllama) -> Iterator[Services]:
    opened = open_services(Settings(fake_ollama.url, tmp_path / "other.duckdb", 8501))
    yield opened
    opened.close()


def branchy(services: Services) -> None:
    """A conversation with an edited message, a regenerated reply, a switch back, and a fork."""
    chat = services.chat
    for text in ("one", "two", "three"):
        chat.send("t", text, MODEL, PARAMS).consume()
    second = chat.messages("t")[2]
    chat.send("t", "two, edited", "qwen3:4b", PARAMS, parent_id=second.parent_id).consume()
    chat.regenerate("t", MODEL, PARAMS).consume()
    chat.branches.fork("t", chat.messages("t")[-1].id, "t-fork")
    chat.branches.switch("t", second.id)


def test_a_tree_round_trips_exactly(services: Services, other: Services) -> None:
    branchy(services)
    data = transfer.export_json(services.db)
    assert json.loads(data)["version"] == transfer.VERSION
    report = transfer.import_json(other.db, data)
    assert sorted(report.imported) == ["t", "t-fork"]
    assert table_rows(other) == table_rows(services)
    for conversation in ("t", "t-fork"):
        mine = services.chat.branches.tree(conversation)
        theirs = other.chat.branches.tree(conversation)
        assert [(m.content, len(m.siblings)) for m in theirs] == [
            (m.content, len(m.siblings)) for m in mine
        ]
        assert [m.content for m in other.chat.messages(conversation)] == [
            m.content for m in services.chat.messages(conversation)
        ]
    assert other.chat.messages("t-fork")[1].run is not None  # the fork's runs came with "t"


def test_markdown_export_is_the_open_branch(services: Services) -> None:
    branchy(services)
    text = transfer.export_markdown(services.db, ["t"])
    assert "three" in text and "two, edited" not in text
    services.chat.branches.switch("t", services.chat.branches.tree("t")[-1].id)
    text = transfer.export_markdown(services.db, ["t"])
    assert "two, edited" in text and "three" not in text


def test_a_version_2_file_imports_as_one_branch_with_regenerated_siblings(
    services: Services, other: Services
) -> None:
    services.chat.send("old", "hi", MODEL, PARAMS).consume()
    services.chat.regenerate("old", "qwen3:4b", PARAMS).consume()
    services.chat.send("old", "more", MODEL, PARAMS).consume()
    document = json.loads(transfer.export_json(services.db, version=4))
    document["version"] = 2
    for conversation in document["conversations"]:
        del conversation["open_message_id"]
        for message in conversation["messages"]:
            # version 2 hid the replaced reply with a flag, and had no parents
            message["superseded"] = message["content"] == "Hello there, I am a small model." and (
                message["id"] == 2
            )
            del message["parent_id"], message["forked_from"]
    transfer.import_json(other.db, json.dumps(document).encode())
    branch = other.chat.messages("old")
    assert [m.content for m in branch] == ["hi", "Bonjour from Qwen.", "more", branch[3].content]
    assert len(branch[1].siblings) == 2


def test_a_parent_that_is_not_an_earlier_message_is_refused(
    services: Services, other: Services
) -> None:
    branchy(services)
    document = json.loads(transfer.export_json(services.db))
    messages = document["conversations"][0]["messages"]
    messages[0]["parent_id"] = messages[-1]["id"]
    with pytest.raises(transfer.ImportRefused, match="not an earlier message"):
        transfer.import_json(other.db, json.dumps(document).encode())
    assert other.chat.recent_titles() == []
