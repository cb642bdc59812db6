"""Images for vision models through the one send path: checked, stored once, sent as Ollama
expects, refused before anything is stored for a model that can't see them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore import transfer
from chatcore.config import Settings
from chatcore.errors import InvalidInput
from chatcore.images import MAX_IMAGE_BYTES
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from testkit.fake_ollama import FakeModel, FakeOllama
from testkit.images import jpeg, png

PARAMS = GenerationParams()


@pytest.fixture
def vision_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(
        [
            FakeModel("gemma3:4b", reply="A red square.", capabilities=("completion", "vision")),
            FakeModel("llama3.2:latest", reply="I read text."),
        ]
    ).start()
    yield server
    server.stop()


@pytest.fixture
def vision(vision_ollama: FakeOllama, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(
        Settings(ollama_host=vision_ollama.url, db_path=tmp_path / "chat.duckdb", port=8501)
    )
    yield opened
    opened.close()


def counts(services: Services) -> dict[str, int]:
    with services.db.cursor() as cur:
        return {
            table: cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("conversations", "messages", "runs", "images", "message_images")
        }


def test_an_image_is_sent_as_base64_and_stored_with_the_message(
    vision: Services, vision_ollama: FakeOllama
) -> None:
    picture = png()
    reply = vision.chat.send(None, "What is this?", "gemma3:4b", PARAMS, images=[picture]).consume()
    assert reply.status == "complete"
    sent = vision_ollama.chat_requests()[-1]["body"]["messages"]
    assert sent[-1]["images"] == [base64.b64encode(picture).decode()]

    user = vision.chat.messages(reply.conversation_id)[0]
    assert len(user.images) == 1
    stored = vision.chat.images(user.images)[user.images[0]]
    assert (stored.data, stored.mime) == (picture, "image/png")


def test_later_turns_and_regenerate_resend_the_images(
    vision: Services, vision_ollama: FakeOllama
) -> None:
    picture = jpeg()
    first = vision.chat.send(None, "Look", "gemma3:4b", PARAMS, images=[picture]).consume()
    vision.chat.send(first.conversation_id, "More?", "gemma3:4b", PARAMS).consume()
    sent = vision_ollama.chat_requests()[-1]["body"]["messages"]
    assert sent[0]["images"] == [base64.b64encode(picture).decode()]
    assert "images" not in sent[2]
    vision.chat.regenerate(first.conversation_id, "gemma3:4b", PARAMS).consume()
    assert vision_ollama.chat_requests()[-1]["body"]["messages"][0]["images"]


def test_a_model_without_vision_is_refused_before_anything_is_stored(vision: Services) -> None:
    before = counts(vision)
    with pytest.raises(InvalidInput, match=r"llama3\.2:latest can.t see images"):
        vision.chat.send(None, "What is this?", "llama3.2", PARAMS, images=[png()])
    assert counts(vision) == before


def test_switching_to_a_model_without_vision_leaves_the_images_out(
    vision: Services, vision_ollama: FakeOllama
) -> None:
    first = vision.chat.send(None, "Look", "gemma3:4b", PARAMS, images=[png()]).consume()
    reply = vision.chat.send(first.conversation_id, "Say it in words", "llama3.2", PARAMS)
    assert reply.consume().status == "complete"
    assert all("images" not in m for m in vision_ollama.chat_requests()[-1]["body"]["messages"])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, not an image", "not a PNG, JPEG, WebP or GIF"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"0" * (MAX_IMAGE_BYTES + 1), "too large"),
    ],
)
def test_an_invalid_image_is_refused_clearly(vision: Services, data: bytes, reason: str) -> None:
    before = counts(vision)
    with pytest.raises(InvalidInput, match=reason):
        vision.chat.send(None, "What is this?", "gemma3:4b", PARAMS, images=[data])
    assert counts(vision) == before


def test_the_same_image_is_stored_once(vision: Services) -> None:
    picture = png()
    vision.chat.send(None, "One", "gemma3:4b", PARAMS, images=[picture]).consume()
    vision.chat.send(None, "Two", "gemma3:4b", PARAMS, images=[picture, picture]).consume()
    assert counts(vision)["images"] == 1
    assert counts(vision)["message_images"] == 3


def test_deleting_the_conversations_deletes_their_images(vision: Services) -> None:
    reply = vision.chat.send(None, "One", "gemma3:4b", PARAMS, images=[png()]).consume()
    vision.history.delete([reply.conversation_id])
    assert counts(vision)["images"] == 0 and counts(vision)["message_images"] == 0


def test_json_export_carries_images_and_thinking_losslessly(
    vision: Services, tmp_path: Path
) -> None:
    picture = png()
    reply = vision.chat.send(None, "Look", "gemma3:4b", PARAMS, images=[picture]).consume()
    data = transfer.export_json(vision.db)
    document = json.loads(data)
    assert document["version"] == transfer.VERSION == 5
    message = document["conversations"][0]["messages"][0]
    assert message["images"] and message["images"][0] in document["images"]
    assert "thinking" in document["conversations"][0]["messages"][1]

    other = open_services(
        Settings(ollama_host="http://127.0.0.1:9", db_path=tmp_path / "other.duckdb", port=8501)
    )
    try:
        report = transfer.import_json(other.db, data)
        assert report.imported == [reply.conversation_id]
        user = other.chat.messages(reply.conversation_id)[0]
        assert other.chat.images(user.images)[user.images[0]].data == picture
    finally:
        other.close()


def test_markdown_export_shows_the_image(vision: Services) -> None:
    vision.chat.send(None, "Look", "gemma3:4b", PARAMS, images=[png()]).consume()
    text = transfer.export_markdown(vision.db)
    assert "![attached image](data:image/png;base64," in text


def test_a_version_1_file_still_imports(vision: Services, tmp_path: Path) -> None:
    vision.chat.send(None, "Plain", "llama3.2", PARAMS).consume()
    document = json.loads(transfer.export_json(vision.db, version=4))
    document["version"] = 1
    document.pop("images")
    for conversation in document["conversations"]:
        del conversation["open_message_id"]
        for message in conversation["messages"]:
            del message["thinking"], message["images"], message["parent_id"], message["forked_from"]
            message["superseded"] = False
            for run in message["runs"]:
                for name in (
                    "answer_ms",
                    "thinking_ms",
                    "thinking_tokens",
                    "answer_tokens",
                    "context_summarised",
                    "tool_calls",
                ):
                    del run[name]
    other = open_services(
        Settings(ollama_host="http://127.0.0.1:9", db_path=tmp_path / "v1.duckdb", port=8501)
    )
    try:
        report = transfer.import_json(other.db, json.dumps(document).encode())
        assert len(report.imported) == 1 and report.messages == 2
    finally:
        other.close()


def test_an_image_that_does_not_match_its_hash_is_refused(vision: Services) -> None:
    vision.chat.send(None, "Look", "gemma3:4b", PARAMS, images=[png()]).consume()
    document = json.loads(transfer.export_json(vision.db))
    (key,) = document["images"]
    document["images"][key]["data"] = base64.b64encode(jpeg()).decode()
    with pytest.raises(transfer.ImportRefused, match="does not match its hash"):
        transfer.import_json(vision.db, json.dumps(document).encode())
