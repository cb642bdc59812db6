"""Export and import on real DuckDB files: the round trip is lossless, bad files write nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import transfer
from chatcore.config import Settings
from chatcore.services import Services, open_services
from chatcore.storage import transfer as transfer_queries
from chatcore.transfer import ImportRefused
from testkit.fake_ollama import FakeOllama
from testkit.history_data import table_rows, varied_history


@pytest.fixture
def other(tmp_path: Path, fake_ollama: FakeOllama) -> Iterator[Services]:
    """A second, empty database."""
    opened = open_services(Settings(fake_ollama.url, tmp_path / "other.duckdb", 8501))
    yield opened
    opened.close()


def test_export_then_import_into_an_empty_database_gives_an_equal_database(
    services: Services, fake_ollama: FakeOllama, other: Services
) -> None:
    varied_history(services, fake_ollama)
    data = transfer.export_json(services.db)
    document = json.loads(data)
    assert (document["format"], document["version"]) == (transfer.FORMAT, transfer.VERSION)

    report = transfer.import_json(other.db, data)

    original = table_rows(services)
    assert report.imported == ["alpha", "beta", "gamma"] and report.skipped == []
    assert (report.messages, report.runs) == (len(original["messages"]), len(original["runs"]))
    assert table_rows(other) == original
    statuses = {row[4] for row in original["runs"]}
    assert statuses == {"complete", "stopped", "error"}  # the fixture covers every outcome
    places = [row[-3:-2] for row in original["messages"] if row[0] == "alpha"]
    assert len(places) > len(set(places))  # and a regenerated reply: two answers to one message
    # what the History page shows is the same too
    assert other.history.list_conversations() == services.history.list_conversations()


def test_importing_twice_skips_what_is_there_and_reports_it(
    services: Services, fake_ollama: FakeOllama, other: Services
) -> None:
    varied_history(services, fake_ollama)
    one = transfer.export_json(services.db, ["beta"])
    assert transfer.import_json(other.db, one).imported == ["beta"]
    before = table_rows(other)

    report = transfer.import_json(other.db, transfer.export_json(services.db))

    assert report.skipped == ["beta"] and report.imported == ["alpha", "gamma"]
    assert report.skipped_titles == [services.chat.conversation("beta").title]  # type: ignore[union-attr]
    after = table_rows(other)
    assert [r for r in after["messages"] if r[0] == "beta"] == before["messages"]
    assert table_rows(other) == table_rows(services)


def test_import_beside_existing_rows_gives_fresh_ids(
    services: Services, fake_ollama: FakeOllama, other: Services
) -> None:
    other.chat.send("mine", "Already here", "llama3.2", transfer_params()).consume()
    varied_history(services, fake_ollama)
    transfer.import_json(other.db, transfer.export_json(services.db))
    with other.db.cursor() as cur:
        orphans = cur.execute(
            "SELECT count(*) FROM runs r LEFT JOIN messages m ON m.id = r.message_id "
            "WHERE m.id IS NULL OR m.conversation_id <> r.conversation_id"
        ).fetchone()[0]
        count = cur.execute("SELECT count(*) FROM conversations").fetchone()[0]
    assert orphans == 0 and count == 4
    assert other.chat.messages("mine")[0].content == "Already here"


def transfer_params():  # type: ignore[no-untyped-def]
    from chatcore.params import GenerationParams

    return GenerationParams()


def mutated(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    document = json.loads(data)
    change(document)
    return json.dumps(document).encode()


def set_path(path: list[object], value: object):  # type: ignore[no-untyped-def]
    def change(document: dict) -> None:  # type: ignore[type-arg]
        target = document
        for part in path[:-1]:
            target = target[part]  # type: ignore[index]
        target[path[-1]] = value  # type: ignore[index]

    return change


def duplicate_conversation(document: dict) -> None:  # type: ignore[type-arg]
    document["conversations"].append(dict(document["conversations"][0]))


def duplicate_message(document: dict) -> None:  # type: ignore[type-arg]
    messages = document["conversations"][1]["messages"]
    messages[0]["id"] = document["conversations"][0]["messages"][0]["id"]


BAD_FILES = {
    "truncated": (lambda data: data[: len(data) // 2], "not valid JSON"),
    "not JSON at all": (lambda data: b"\x89PNG\r\n", "not valid JSON"),
    "a foreign JSON file": (lambda data: b'{"chats": []}', "not a conversation export"),
    "a JSON list": (lambda data: b"[1, 2]", "not a conversation export"),
    "an unknown version": (
        lambda data: mutated(data, set_path(["version"], 6)),
        "version is 6",
    ),
    "a string for a number": (
        lambda data: mutated(
            data, set_path(["conversations", 0, "messages", 1, "runs", 0, "prompt_tokens"], "7")
        ),
        "prompt_tokens",
    ),
    "a string for a parent": (
        lambda data: mutated(data, set_path(["conversations", 0, "messages", 1, "parent_id"], "1")),
        "parent_id",
    ),
    "an unknown role": (
        lambda data: mutated(data, set_path(["conversations", 0, "messages", 0, "role"], "robot")),
        "role",
    ),
    "a date without a zone": (
        lambda data: mutated(
            data, set_path(["conversations", 0, "created_at"], "2025-01-01T10:00:00")
        ),
        "created_at",
    ),
    "a missing field": (
        lambda data: mutated(data, lambda d: d["conversations"][0].pop("title")),
        "title",
    ),
    "an unknown field": (
        lambda data: mutated(data, set_path(["conversations", 0, "colour"], "red")),
        "colour",
    ),
    "a bad conversation id": (
        lambda data: mutated(data, set_path(["conversations", 0, "id"], "../etc")),
        "conversations.0.id",
    ),
    "the same conversation twice": (
        lambda data: mutated(data, duplicate_conversation),
        "same conversation id",
    ),
    "the same message id twice": (
        lambda data: mutated(data, duplicate_message),
        "same message id",
    ),
    "an unknown part": (
        lambda data: json.dumps({"padding": "x" * 1000, **json.loads(data)}).encode(),
        "padding: Extra inputs",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_clearly_and_writes_nothing(
    case: str, services: Services, fake_ollama: FakeOllama, other: Services
) -> None:
    varied_history(services, fake_ollama)
    good = transfer.export_json(services.db)
    other.chat.send("mine", "Already here", "llama3.2", transfer_params()).consume()
    before = table_rows(other)
    spoil, expected = BAD_FILES[case]

    with pytest.raises(ImportRefused, match=expected):
        transfer.import_json(other.db, spoil(good))

    assert table_rows(other) == before


def test_a_chinese_conversation_id_exports_and_imports(services: Services, other: Services) -> None:
    services.chat.send("会话-一", "你好", "llama3.2", transfer_params()).consume()
    report = transfer.import_json(other.db, transfer.export_json(services.db))
    assert report.imported == ["会话-一"]
    assert other.chat.exists("会话-一")


def test_a_failure_while_writing_rolls_everything_back(
    services: Services, fake_ollama: FakeOllama, other: Services, monkeypatch
) -> None:
    varied_history(services, fake_ollama)
    data = transfer.export_json(services.db)
    before = table_rows(other)

    def broken_runs_insert(cur, table, path):  # type: ignore[no-untyped-def]
        if table == "runs":
            raise RuntimeError("disk full")
        original_insert(cur, table, path)

    original_insert = transfer_queries.insert_file
    monkeypatch.setattr(transfer_queries, "insert_file", broken_runs_insert)
    with pytest.raises(RuntimeError):
        transfer.import_json(other.db, data)
    assert table_rows(other) == before


def test_markdown_reads_the_visible_dialogue_with_captions(
    services: Services, fake_ollama: FakeOllama
) -> None:
    varied_history(services, fake_ollama)
    text = transfer.export_markdown(services.db, ["alpha"])
    assert text.startswith("# Tell me about otters\n")
    assert "**User**\n\nAnd about 50% of beavers?" in text
    assert "*llama3.2:latest · 7 tokens ·" in text
    assert "Bonjour from Qwen." not in text  # the regenerated reply is left out
    failed = transfer.export_markdown(services.db, ["gamma"])
    assert "error:" in failed


def test_a_value_too_large_for_its_column_is_refused_and_writes_nothing(
    services: Services, fake_ollama: FakeOllama, other: Services
) -> None:
    """Found by the property test: a prompt_tokens past 2^31 once escaped as a raw Arrow error."""
    varied_history(services, fake_ollama)
    document = json.loads(transfer.export_json(services.db))
    run = next(r for c in document["conversations"] for m in c["messages"] for r in m["runs"])
    run["prompt_tokens"] = 2**31
    before = table_rows(other)
    with pytest.raises(ImportRefused, match="does not fit the runs table"):
        transfer.import_json(other.db, json.dumps(document).encode())
    assert table_rows(other) == before


def test_the_evaluation_bumped_the_version_and_version_2_files_still_import(
    services: Services, fake_ollama: FakeOllama, other: Services, tmp_path: Path
) -> None:
    """Version 3 added the evaluation section, which a version 2 reader (strict) refuses, and
    version 4 the message trees; files of either older shape still import."""
    varied_history(services, fake_ollama)
    document = json.loads(transfer.export_json(services.db, version=4))
    assert document["version"] == 4 and "evaluation" in document
    before_trees = as_single_branch(document)
    before_trees["version"] = 3
    report = transfer.import_json(other.db, json.dumps(before_trees).encode())
    assert report.imported == ["alpha", "beta", "gamma"]
    del before_trees["evaluation"]
    before_trees["version"] = 2
    third = open_services(Settings(fake_ollama.url, tmp_path / "third.duckdb", 8501))
    try:
        another = transfer.import_json(third.db, json.dumps(before_trees).encode())
        assert another.imported == ["alpha", "beta", "gamma"]
    finally:
        third.close()


def as_single_branch(document: dict) -> dict:
    """A version 4 document in the shape before trees: no parents, forks or open branch."""
    conversations = []
    for conversation in document["conversations"]:
        conversation = {k: v for k, v in conversation.items() if k != "open_message_id"}
        conversation["messages"] = [
            {
                **{k: v for k, v in m.items() if k not in ("parent_id", "forked_from")},
                "superseded": False,
            }
            for m in conversation["messages"]
        ]
        conversations.append(conversation)
    return {**document, "conversations": conversations}
