"""The JSON and Markdown exports as streams of bytes, conversation by conversation.

Memory stays flat whatever the history's size: conversations are read from DuckDB in batches of
about BATCH_MESSAGES messages, each written out and forgotten, and images are read a few at a
time after them. The JSON is one document (format FORMAT, version VERSION): its small parts
first (format, version, presets, the evaluation), then one conversation per line, then the
images by hash, so a reader meets what it needs to check the rest before the bulk.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from chatcore.errors import InvalidInput
from chatcore.evaluation_transfer import evaluation_document
from chatcore.storage import images as image_store
from chatcore.storage import presets as preset_store
from chatcore.storage import transfer as queries
from chatcore.storage.db import Database
from chatcore.storage.trees import Tree
from chatcore.transfer_format import FORMAT, VERSION, RunV2
from chatcore.types import Image, Metrics, RunStatus

MESSAGE_FIELDS = ["id", "parent_id", "forked_from", "role", "content", "created_at", "thinking"]
RUN_FIELDS = list(RunV2.model_fields)
BATCH_MESSAGES = 20_000  # messages read from DuckDB at a time (a few MB of text)
BATCH_IMAGES = 16  # images read at a time (each up to several MB)
CHUNK_BYTES = 1 << 20  # bytes yielded at a time: fewer, larger writes to the socket or file

Document = dict[str, Any]


# --- JSON ---


def export_chunks(
    db: Database,
    conversation_ids: list[str] | None = None,
    exported_at: datetime | None = None,
    version: int = VERSION,
    size_hint: int | None = None,
) -> Iterator[bytes]:
    """These conversations (all when None) as a JSON document, in pieces of about CHUNK_BYTES.
    A whole export carries the presets and the evaluation too. `version` 4 writes the previous
    format (for another install of the app that reads no newer one)."""
    check_version(version)
    return export_bytes(db, conversation_ids, exported_at, version, size_hint or CHUNK_BYTES)


def check_version(version: int) -> None:
    if version not in (4, VERSION):
        raise InvalidInput(f"The export is written in format version 4 or {VERSION}.")


def export_bytes(
    db: Database,
    conversation_ids: list[str] | None,
    exported_at: datetime | None,
    version: int,
    size_hint: int,
) -> Iterator[bytes]:
    pieces = export_pieces(db, conversation_ids, exported_at or datetime.now(UTC), version)
    yield from coalesced(pieces, size_hint)


def export_pieces(
    db: Database, conversation_ids: list[str] | None, exported_at: datetime, version: int
) -> Iterator[str]:
    whole = conversation_ids is None
    head: Document = {"format": FORMAT, "version": version, "exported_at": exported_at.isoformat()}
    if version >= 5:  # always written, so a reader finds them before the bulk
        head["presets"] = preset_documents(db) if whole else []
        head["evaluation"] = evaluation_document(db) if whole else None
    elif whole:
        head["evaluation"] = evaluation_document(db)
    opening = dumps(head, indent=1)
    yield opening[: opening.rindex("}")].rstrip() + ',\n "conversations": ['
    first = True
    for conversation, _images in conversation_stream(db, conversation_ids):
        if version < 5:
            conversation = as_version_4(conversation)
        yield ("\n" if first else ",\n") + dumps(conversation)
        first = False
    yield '\n ],\n "images": {'
    first = True
    for image in attached_images(db, conversation_ids):
        encoded = base64.b64encode(image.data).decode()
        yield (
            ("\n" if first else ",\n")
            + f"{dumps(image.sha256)}: "
            + dumps({"mime": image.mime, "data": encoded})
        )
        first = False
    yield "\n }\n}\n"


def as_version_4(conversation: Document) -> Document:
    """A conversation without what version 5 added."""
    del conversation["summaries"]
    for message in conversation["messages"]:
        for run in message["runs"]:
            del run["context"], run["retrieval"], run["citations"]
    return conversation


def coalesced(pieces: Iterator[str], size: int) -> Iterator[bytes]:
    """Pieces of text gathered into chunks of bytes of about `size`."""
    buffered: list[bytes] = []
    length = 0
    for piece in pieces:
        data = piece.encode()
        buffered.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(buffered)
            buffered, length = [], 0
    if buffered:
        yield b"".join(buffered)


def dumps(value: Any, indent: int | None = None) -> str:
    separators = None if indent is not None else (",", ":")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)


def preset_documents(db: Database) -> list[Document]:
    with db.cursor() as cur:
        rows = preset_store.preset_rows(cur)
    return [
        {"name": name, "params": params, "updated_at": iso(updated_at)}
        for name, params, updated_at in rows
    ]


def attached_images(db: Database, conversation_ids: list[str] | None) -> Iterator[Image]:
    """The images these conversations carry, by hash, a few at a time."""
    with db.cursor() as cur:
        hashes = queries.attached_image_hashes(cur, conversation_ids)
    for start in range(0, len(hashes), BATCH_IMAGES):
        batch = hashes[start : start + BATCH_IMAGES]
        with db.cursor() as cur:
            found = image_store.load_images(cur, batch)
        yield from (found[sha256] for sha256 in batch if sha256 in found)


def conversation_stream(
    db: Database, conversation_ids: list[str] | None
) -> Iterator[tuple[Document, dict[str, Image]]]:
    """Each conversation as a nested dict (version 5), oldest first, with the images its
    messages carry (for Markdown; the JSON export writes them once, after the conversations)."""
    with db.cursor() as cur:
        order = queries.conversation_order(cur, conversation_ids)
        sizes = dict(queries.message_counts(cur, conversation_ids))
    batch: list[str] = []
    messages = 0
    for conversation_id in order:
        batch.append(conversation_id)
        messages += sizes.get(conversation_id, 0)
        if messages >= BATCH_MESSAGES:
            yield from conversation_batch(db, batch)
            batch, messages = [], 0
    if batch:
        yield from conversation_batch(db, batch)


def conversation_batch(
    db: Database, conversation_ids: list[str]
) -> Iterator[tuple[Document, dict[str, Image]]]:
    with db.cursor() as cur:
        conversations, messages, runs = queries.conversation_rows(
            cur, conversation_ids, MESSAGE_FIELDS, RUN_FIELDS
        )
        fits, retrievals, citations = queries.run_extras(cur, [r["id"] for r in runs])
        summaries = queries.context_summary_rows(cur, conversation_ids)
        attached = image_store.image_rows(cur, [m["id"] for m in messages])
    hashes_by_message: dict[int, list[str]] = {}
    images_by_message: dict[int, list[Image]] = {}
    for message_id, image in attached:
        hashes_by_message.setdefault(message_id, []).append(image.sha256)
        images_by_message.setdefault(message_id, []).append(image)
    fit_of = {row.pop("run_id"): row for row in fits}
    retrieval_of = {row.pop("run_id"): row for row in retrievals}
    citations_of = grouped(citations, "run_id")
    runs_by_message = grouped(
        [
            {
                **run,
                "options": json.loads(run["options"]),
                "context": fit_of.get(run["id"]),
                "retrieval": retrieval_of.get(run["id"]),
                "citations": citations_of.get(run["id"], []),
            }
            for run in isoformatted(runs)
        ],
        "message_id",
    )
    messages_by_conversation = grouped(isoformatted(messages), "conversation_id")
    summaries_by_conversation = grouped(isoformatted(summaries), "conversation_id")
    for conversation in isoformatted(conversations):
        conversation_messages = messages_by_conversation.get(conversation["id"], [])
        images: dict[str, Image] = {}
        for message in conversation_messages:
            message["thinking"] = message["thinking"] or ""
            message["images"] = hashes_by_message.get(message["id"], [])
            message["runs"] = runs_by_message.get(message["id"], [])
            images.update((i.sha256, i) for i in images_by_message.get(message["id"], []))
        conversation["messages"] = conversation_messages
        conversation["summaries"] = summaries_by_conversation.get(conversation["id"], [])
        yield conversation, images


def grouped(rows: list[Document], key: str) -> dict[Any, list[Document]]:
    """Rows by the value of `key`, which is taken out of each row; order kept."""
    groups: dict[Any, list[Document]] = {}
    for row in rows:
        groups.setdefault(row.pop(key), []).append(row)
    return groups


def isoformatted(rows: list[Document]) -> list[Document]:
    return [{name: iso(value) for name, value in row.items()} for row in rows]


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- Markdown ---


def markdown_chunks(
    db: Database, conversation_ids: list[str] | None = None, size_hint: int | None = None
) -> Iterator[bytes]:
    """The open branch of each of these conversations, for reading; other branches left out."""
    yield from coalesced(markdown_pieces(db, conversation_ids), size_hint or CHUNK_BYTES)


def markdown_pieces(db: Database, conversation_ids: list[str] | None) -> Iterator[str]:
    first = True
    for conversation, images in conversation_stream(db, conversation_ids):
        yield ("" if first else "\n") + markdown_conversation(conversation, images)
        first = False


def markdown_conversation(conversation: Document, images: dict[str, Image]) -> str:
    parts = [f"# {conversation['title']}\n"]
    parts.append(
        f"*Started {conversation['created_at'][:16].replace('T', ' ')}, last active "
        f"{conversation['updated_at'][:16].replace('T', ' ')}*\n"
    )
    for message in open_branch_of(conversation):
        parts.append(f"**{message['role'].capitalize()}**\n")
        if message["thinking"]:
            parts.append(markdown_thinking(message["thinking"]))
        parts.append(f"{message['content']}\n")
        for sha256 in message["images"]:
            parts.append(markdown_image(images[sha256]))
        for run in message["runs"]:
            parts.append(f"*{markdown_caption(run)}*\n")
    parts.append("---\n")
    return "\n".join(parts)


def open_branch_of(conversation: Document) -> list[Document]:
    """The messages of a conversation document's open branch, first message first."""
    messages = conversation["messages"]
    tree = Tree.of((m["id"], m["parent_id"]) for m in messages)
    branch = set(tree.branch(conversation["open_message_id"]))
    return [m for m in messages if m["id"] in branch]


def markdown_thinking(thinking: str) -> str:
    """The reasoning as a quoted block above the answer, so it reads apart from it."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in thinking.strip().splitlines())
    return f"> *Thinking*\n>\n{quoted}\n"


def markdown_image(image: Image) -> str:
    """The attached image inside the file itself (a data URL): the export stays one file."""
    encoded = base64.b64encode(image.data).decode()
    return f"![attached image](data:{image.mime};base64,{encoded})\n"


def markdown_caption(run: Document) -> str:
    """The line under a reply in a Markdown export: who answered, how much, how fast, how it
    ended. Worded like the app's caption (ui/formatting.py), which chatcore does not import."""
    metrics = Metrics(**{name: run[name] for name in Metrics.__dataclass_fields__})
    parts = [run["model"]]
    if metrics.completion_tokens is not None:
        parts.append(f"{metrics.completion_tokens} tokens")
    if (speed := metrics.tokens_per_second) is not None:
        parts.append(f"{speed:.1f} tok/s")
    if metrics.thinking_tokens:
        parts.append(f"{metrics.thinking_tokens} thinking")
    if run["ttft_ms"] is not None:
        parts.append(f"first token {run['ttft_ms'] / 1000:.2f} s")
    if metrics.thinking_tokens and metrics.answer_ms is not None:
        parts.append(f"answer after {metrics.answer_ms / 1000:.2f} s")
    if metrics.load_duration_ns is not None:
        parts.append(f"load {metrics.load_duration_ns / 1e9:.2f} s")
    if metrics.done_reason == "length":
        parts.append("cut at max tokens")
    if summarised := metrics.context_summarised:
        parts.append(f"{summarised} old messages summarised to fit the context")
    if left_out := metrics.context_dropped - metrics.context_summarised:
        parts.append(f"{left_out} old messages left out to fit the context")
    if run["status"] == RunStatus.STOPPED:
        parts.append("stopped")
    if run["status"] == RunStatus.ERROR:
        parts.append(f"error: {run['error']}")
    return " · ".join(parts)
