"""Big histories: the export streams, the import reads a file of any size in two streaming passes
(check, then apply in one transaction), and an export of everything restores everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatcore import transfer, transfer_export, transfer_import
from chatcore.config import Settings
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.storage import context_fits, knowledge
from chatcore.types import Citation
from testkit.export_v4_reference import reference_document
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.images import png

PARAMS = GenerationParams()
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD_CAP = 32 * 2**20


@pytest.fixture
def rich_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("alpha:latest", reply="Alpha answers."),
            FakeModel("beta:latest", reply="Beta answers, 你好."),
            FakeModel("eye:latest", reply="A red square.", capabilities=("completion", "vision")),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def rich(rich_ollama: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    """Trees, a fork, runs of every model, a compare round with its vote, presets, an image, a
    context summary, a run's context fit and its citations."""
    opened = open_services(Settings(rich_ollama.url, tmp_path / "rich.duckdb", 8501))
    chat = opened.chat
    chat.send("t", "one", "alpha", PARAMS).consume()
    chat.send("t", "two", "beta", PARAMS).consume()
    second = chat.messages("t")[2]
    chat.send("t", "two, edited", "beta", PARAMS, parent_id=second.parent_id).consume()
    chat.regenerate("t", "alpha", PARAMS).consume()
    chat.branches.fork("t", chat.messages("t")[-1].id, "t-fork")
    chat.branches.switch("t", second.id)
    chat.send("pic", "Look", "eye", PARAMS, images=[png()]).consume()
    live = opened.compare.start("Compare me", ["alpha:latest", "beta:latest"], PARAMS, blind=True)
    live.wait()
    opened.compare.vote(live.id, "best", "A")
    opened.presets.save("terse", {"temperature": 0.2, "system_prompt": "Be brief."})
    opened.presets.save("creative", {"temperature": 1.0})
    run_id = chat.messages("t")[-1].run.id  # type: ignore[union-attr]
    with opened.db.transaction() as cur:
        context_fits.save_summary(
            cur, conversation_id="t", covered=2, covered_hash="abc", model="alpha", summary="So far"
        )
        knowledge.save_retrieval(
            cur,
            run_id,
            ["notes"],
            12.5,
            [Citation(1, 7, "notes.md", "notes", 70, "A line", 0.5, 0.9)],
        )
    yield opened
    opened.close()


@pytest.fixture
def empty(rich_ollama: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(Settings(rich_ollama.url, tmp_path / "empty.duckdb", 8501))
    yield opened
    opened.close()


def row_counts(services: Services) -> dict[str, int]:
    tables = ("conversations", "messages", "runs", "images", "message_images", "presets")
    with services.db.cursor() as cur:
        return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}


def test_export_all_then_import_into_an_empty_database_then_export_is_byte_identical(
    rich: Services, empty: Services
) -> None:
    first = transfer.export_json(rich.db, exported_at=WHEN)
    document = json.loads(first)
    runs = [r for c in document["conversations"] for m in c["messages"] for r in m["runs"]]
    # everything the app keeps beside the conversations travels
    assert [p["name"] for p in document["presets"]] == ["creative", "terse"]
    assert (
        len(document["evaluation"]["compare_rounds"]) == len(document["evaluation"]["votes"]) == 1
    )
    assert document["images"] and any(c["summaries"] for c in document["conversations"])
    assert any(r["context"] for r in runs) and any(r["citations"] for r in runs)

    report = transfer.import_json(empty.db, first)

    assert sorted(report.imported) == sorted(c["id"] for c in document["conversations"])
    assert report.presets == ["creative", "terse"]
    assert transfer.export_json(empty.db, exported_at=WHEN) == first
    assert row_counts(empty) == row_counts(rich)


def test_the_streamed_version_4_export_holds_what_the_in_memory_export_held(
    rich: Services,
) -> None:
    streamed = json.loads(transfer.export_json(rich.db, version=4))
    del streamed["exported_at"]
    assert streamed == reference_document(rich.db)
    chosen = json.loads(transfer.export_json(rich.db, ["t"], version=4))
    del chosen["exported_at"]
    assert chosen == reference_document(rich.db, ["t"])


def test_the_export_comes_in_chunks_read_in_small_batches(
    rich: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = transfer.export_json(rich.db, exported_at=WHEN)
    monkeypatch.setattr(transfer_export, "BATCH_MESSAGES", 2)
    monkeypatch.setattr(transfer_export, "BATCH_IMAGES", 1)
    chunks = list(transfer_export.export_chunks(rich.db, exported_at=WHEN, size_hint=256))
    assert len(chunks) > 5 and b"".join(chunks) == whole
    markdown = list(transfer_export.markdown_chunks(rich.db, size_hint=64))
    assert len(markdown) > 3 and b"".join(markdown).decode() == transfer.export_markdown(rich.db)


def test_an_import_applied_in_many_small_batches_restores_the_same_history(
    rich: Services, empty: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exported = tmp_path / "export.json"
    exported.write_bytes(transfer.export_json(rich.db, exported_at=WHEN))
    monkeypatch.setattr(transfer_import, "BATCH_MESSAGES", 1)
    with exported.open("rb") as file:
        transfer.import_json(empty.db, file)
    assert transfer.export_json(empty.db, exported_at=WHEN) == exported.read_bytes()


def test_version_4_files_still_import(rich: Services, empty: Services) -> None:
    report = transfer.import_json(empty.db, transfer.export_json(rich.db, version=4))
    assert {"pic", "t", "t-fork"} <= set(report.imported) and report.presets == []
    assert [m.content for m in empty.chat.messages("t")] == [
        m.content for m in rich.chat.messages("t")
    ]


# --- a file bigger than the old 32 MB cap, generated quickly ---


def synthetic_export(
    path: Path, conversations: int, messages: int, bad_at: int | None = None
) -> None:
    """A version 5 export of `conversations` conversations of `messages` messages each, about
    1.5 kB a message; with `bad_at`, that conversation has a message of an unknown role."""
    text = "Lorem ipsum dolor sit amet, 你好世界. " * 40
    message_id = 0
    with path.open("w", encoding="utf-8") as file:
        file.write(
            '{"format": "ollama-chat-dashboard/conversations", "version": 5, '
            f'"exported_at": "{WHEN.isoformat()}", "presets": [], "evaluation": null, '
            '"conversations": [\n'
        )
        for c in range(conversations):
            chain: list[dict[str, Any]] = []
            for m in range(messages):
                message_id += 1
                role = "user" if m % 2 == 0 else "assistant"
                if bad_at == c and m == messages - 1:
                    role = "robot"
                chain.append(
                    {
                        "id": message_id,
                        "parent_id": message_id - 1 if m else None,
                        "role": role,
                        "content": f"{m} {text}",
                        "created_at": WHEN.isoformat(),
                        "runs": [],
                    }
                )
            conversation = {
                "id": f"big-{c}",
                "title": f"Big {c}",
                "created_at": WHEN.isoformat(),
                "updated_at": WHEN.isoformat(),
                "messages": chain,
            }
            file.write(("" if c == 0 else ",\n") + json.dumps(conversation, ensure_ascii=False))
        file.write('\n], "images": {}}\n')


def test_a_file_bigger_than_the_old_cap_imports(empty: Services, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    synthetic_export(path, conversations=300, messages=80)
    assert path.stat().st_size > OLD_CAP
    with path.open("rb") as file:
        report = empty.transfer.import_json(file)
    assert (len(report.imported), report.messages) == (300, 24_000)
    assert row_counts(empty)["messages"] == 24_000
    assert empty.chat.messages("big-299")[-1].content.startswith("79 Lorem")


def test_a_bad_conversation_after_good_ones_writes_nothing(
    empty: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_import, "BATCH_MESSAGES", 10)  # good ones would be spooled
    path = tmp_path / "bad.json"
    synthetic_export(path, conversations=40, messages=6, bad_at=37)
    before = row_counts(empty)
    refused = r"conversations\.37\.messages\.5\.role"
    with path.open("rb") as file, pytest.raises(transfer.ImportRefused, match=refused):
        empty.transfer.import_json(file)
    assert row_counts(empty) == before


def test_a_file_truncated_in_the_middle_writes_nothing(empty: Services, tmp_path: Path) -> None:
    path = tmp_path / "whole.json"
    synthetic_export(path, conversations=40, messages=6)
    data = path.read_bytes()
    before = row_counts(empty)
    with pytest.raises(transfer.ImportRefused, match="not valid JSON"):
        empty.transfer.import_json(data[: len(data) * 2 // 3])
    assert row_counts(empty) == before


def test_a_file_that_is_not_an_export_is_told_so(empty: Services) -> None:
    for data in (b'{"messages": []}', b"[]", b'"hello"', b"x" * 100):
        with pytest.raises(transfer.ImportRefused, match=r"not a conversation export|not valid"):
            empty.transfer.import_json(data)


def test_an_id_beyond_64_bits_is_refused_and_writes_nothing(
    empty: Services, tmp_path: Path
) -> None:
    path = tmp_path / "ids.json"
    synthetic_export(path, conversations=2, messages=2)
    document = json.loads(path.read_text())
    document["conversations"][1]["messages"][0]["id"] = 2**70
    document["conversations"][1]["messages"][1]["parent_id"] = 2**70
    with pytest.raises(transfer.ImportRefused, match=r"too large|integer overflow"):
        empty.transfer.import_json(json.dumps(document).encode())
    assert row_counts(empty)["conversations"] == 0
