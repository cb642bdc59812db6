"""Export conversations as JSON (lossless, versioned) or Markdown (for reading); import JSON.

An import is checked whole before anything is written (JSON syntax, format, version, every field's
type, ids unique within the file) and then applied in one transaction: it all lands or none of it.
Conversations already in the database are skipped by id and reported. Message and run ids are the
database's own surrogates: an import gives them fresh ids in the same order, so a file never
collides with what is already stored.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import duckdb
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from chatcore.errors import InvalidInput
from chatcore.evaluation_transfer import EvaluationV1, evaluation_document, import_evaluation
from chatcore.images import valid_image
from chatcore.storage import images as image_store
from chatcore.storage import transfer as queries
from chatcore.storage.db import Database
from chatcore.storage.trees import Tree
from chatcore.types import Image, Metrics, RunStatus, checked_conversation_id

FORMAT = "ollama-chat-dashboard/conversations"
# 2 added reasoning, its metrics and images; 3 the evaluation (compare rounds, votes, suites,
# judge verdicts, collaboration steps), which a version 2 reader refuses; 4 message trees (each
# message's parent, forks, the open branch). Older files import.
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_ERRORS_SHOWN = 5

ConversationId = Annotated[str, AfterValidator(checked_conversation_id)]
Role = Literal["system", "user", "assistant", "tool"]  # tool: a tool's result, relayed


class ImportRefused(InvalidInput):
    """The file can't be imported; `str(error)` says why. Nothing was written."""


# --- the file's shape (version 1) ---


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RunV1(Strict):
    id: int
    model: str
    backend: str
    host: str
    options: dict[str, Any]
    status: RunStatus = Field(strict=False)  # the value as a string
    error: str | None
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_duration_ns: int | None
    load_duration_ns: int | None
    prompt_eval_duration_ns: int | None
    eval_duration_ns: int | None
    done_reason: str | None
    context_dropped: int
    prompt_chars: int | None
    num_ctx: int | None
    request_id: str | None = None  # added after version 1 shipped: older files lack it
    attempts: int | None = 1  # later columns have defaults: older files lack them
    client: str | None = None


class MessageV1(Strict):
    id: int
    role: Role
    content: str
    created_at: AwareDatetime
    superseded: bool
    runs: list[RunV1]


class ConversationV1(Strict):
    id: ConversationId
    title: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    messages: list[MessageV1]


class ExportV1(Strict):
    format: Literal["ollama-chat-dashboard/conversations"]
    version: Literal[1]
    exported_at: AwareDatetime
    conversations: list[ConversationV1] = Field(default_factory=list)
    # compare rounds, votes, suites, suite runs, judge verdicts (chatcore/evaluation_transfer.py)
    evaluation: EvaluationV1 | None = None


# --- version 2: a reply's reasoning and its metrics, images kept once by hash ---


class RunV2(RunV1):
    answer_ms: float | None = None
    thinking_ms: float | None = None
    thinking_tokens: int | None = None
    answer_tokens: int | None = None
    context_summarised: int = 0  # added after version 4 shipped: older files lack it
    tool_calls: str | None = None  # a proxied reply's tool calls, as JSON (absent before)


class MessageV2(MessageV1):
    thinking: str = ""
    images: list[str] = Field(default_factory=list)  # sha256 keys of the document's `images`
    runs: list[RunV2]  # type: ignore[assignment]


class ConversationV2(ConversationV1):
    messages: list[MessageV2]  # type: ignore[assignment]


class ImageV2(Strict):
    mime: str
    data: str  # base64 of the file


class ExportV2(Strict):
    """Versions 2 and 3: 3 may carry the evaluation (files written as 2 with it still read)."""

    format: Literal["ollama-chat-dashboard/conversations"]
    version: Literal[2, 3]
    exported_at: AwareDatetime
    conversations: list[ConversationV2] = Field(default_factory=list)
    images: dict[str, ImageV2] = Field(default_factory=dict)
    # compare rounds, votes, suites, suite runs, judge verdicts (chatcore/evaluation_transfer.py)
    evaluation: EvaluationV1 | None = None


# --- version 4: conversations as trees (each message's parent, forks, the open branch) ---


class MessageV4(Strict):
    id: int
    parent_id: int | None  # an earlier message of the same conversation; None: a first one
    forked_from: int | None = None  # the message a fork copied; its runs are that one's
    role: Role
    content: str
    created_at: AwareDatetime
    thinking: str = ""
    images: list[str] = Field(default_factory=list)
    runs: list[RunV2]


class ConversationV4(Strict):
    id: ConversationId
    title: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    open_message_id: int | None = None  # the message the branch on screen goes through
    messages: list[MessageV4]


class ExportV4(Strict):
    format: Literal["ollama-chat-dashboard/conversations"]
    version: Literal[4]
    exported_at: AwareDatetime
    conversations: list[ConversationV4] = Field(default_factory=list)
    images: dict[str, ImageV2] = Field(default_factory=dict)
    # compare rounds, votes, suites, suite runs, judge verdicts (chatcore/evaluation_transfer.py)
    evaluation: EvaluationV1 | None = None


@dataclass(frozen=True)
class ImportReport:
    imported: list[str]
    skipped: list[str]  # already present, left as they were
    messages: int
    runs: int
    skipped_titles: list[str] = field(default_factory=list)  # what the user knows them by


# --- export ---

MESSAGE_FIELDS = ["id", "parent_id", "forked_from", "role", "content", "created_at", "thinking"]
RUN_FIELDS = list(RunV2.model_fields)


def export_json(db: Database, conversation_ids: list[str] | None = None) -> bytes:
    """These conversations (all when None) as a JSON document of FORMAT, VERSION."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    conversations, images = conversation_documents(db, conversation_ids)
    document["conversations"] = conversations
    document["images"] = {
        sha256: {"mime": image.mime, "data": base64.b64encode(image.data).decode()}
        for sha256, image in images.items()
    }
    if conversation_ids is None:  # a whole export carries the evaluation too
        document["evaluation"] = evaluation_document(db)
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def conversation_documents(
    db: Database, conversation_ids: list[str] | None
) -> tuple[list[dict[str, Any]], dict[str, Image]]:
    """The conversations as nested dicts, and the images their messages carry, by hash."""
    with db.cursor() as cur:
        conversations, messages, runs = queries.conversation_rows(
            cur, conversation_ids, MESSAGE_FIELDS, RUN_FIELDS
        )
        attached = image_store.image_rows(cur, [m["id"] for m in messages])
    images: dict[str, Image] = {}
    hashes_by_message: dict[int, list[str]] = {}
    for message_id, image in attached:
        images[image.sha256] = image
        hashes_by_message.setdefault(message_id, []).append(image.sha256)
    conversations, messages, runs = (
        [{name: iso(value) for name, value in row.items()} for row in rows]
        for rows in (conversations, messages, runs)
    )
    runs_by_message: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        run["options"] = json.loads(run["options"])
        runs_by_message.setdefault(run.pop("message_id"), []).append(run)
    messages_by_conversation: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        message["thinking"] = message["thinking"] or ""
        message["images"] = hashes_by_message.get(message["id"], [])
        message["runs"] = runs_by_message.get(message["id"], [])
        messages_by_conversation.setdefault(message.pop("conversation_id"), []).append(message)
    for conversation in conversations:
        conversation["messages"] = messages_by_conversation.get(conversation["id"], [])
    return conversations, images


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def export_markdown(db: Database, conversation_ids: list[str] | None = None) -> str:
    """The open branch of each of these conversations, for reading; other branches left out."""
    parts = []
    conversations, images = conversation_documents(db, conversation_ids)
    for conversation in conversations:
        parts.append(f"# {conversation['title']}\n")
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


def open_branch_of(conversation: dict[str, Any]) -> list[dict[str, Any]]:
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


def markdown_caption(run: dict[str, Any]) -> str:
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


# --- import ---


def parse_export(data: bytes) -> ExportV4:
    """The file checked whole, or ImportRefused with a message a person can act on."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(
            f"The file is too large ({len(data) / 2**20:.1f} MB; at most "
            f"{MAX_IMPORT_BYTES / 2**20:.0f} MB). Export fewer conversations per file."
        )
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportRefused(
            f"The file is not valid JSON ({error}); it may be truncated or not an export."
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportRefused(
            f'This is not a conversation export of this dashboard (it lacks "format": "{FORMAT}").'
        )
    if document.get("version") not in READABLE_VERSIONS:
        raise ImportRefused(
            f"The file's format version is {document.get('version')!r}; "
            f"this app reads versions {', '.join(map(str, READABLE_VERSIONS))}."
        )
    try:  # strict: no "12" for 12, no 1 for true; datetimes are ISO strings with a zone
        if document["version"] == 1:
            export = as_tree(upgraded(ExportV1.model_validate_json(data)))
        elif document["version"] in (2, 3):
            export = as_tree(ExportV2.model_validate_json(data))
        else:
            export = ExportV4.model_validate_json(data)
    except ValidationError as error:
        raise ImportRefused(validation_message(error)) from error
    refuse_duplicates(export)
    check_tree(export)
    check_images(export)
    return export


def upgraded(export: ExportV1) -> ExportV2:
    """A version 1 file read as version 2: no reasoning, no reasoning metrics, no images."""
    return ExportV2.model_validate({**export.model_dump(), "version": 2})


def as_tree(export: ExportV2) -> ExportV4:
    """A file from before trees read as version 4: each conversation one branch, as migration 11
    made of the database. A message follows the newest visible message before it, so a
    superseded reply and the reply that replaced it are siblings."""
    conversations = []
    for conversation in export.conversations:
        messages, last_visible = [], None
        for message in sorted(conversation.messages, key=lambda m: m.id):
            fields = message.model_dump(exclude={"superseded"})
            messages.append({**fields, "parent_id": last_visible})
            if not message.superseded:
                last_visible = message.id
        conversations.append({**conversation.model_dump(), "messages": messages})
    return ExportV4.model_validate(
        {**export.model_dump(), "version": 4, "conversations": conversations}, strict=False
    )


def check_tree(export: ExportV4) -> None:
    """Each parent is an earlier message of the same conversation, and each open branch goes
    through one of the conversation's messages."""
    for conversation in export.conversations:
        ids = {m.id for m in conversation.messages}
        for message in conversation.messages:
            parent = message.parent_id
            if parent is not None and (parent not in ids or parent >= message.id):
                raise ImportRefused(
                    f"Message {message.id} follows message {parent}, which is not an earlier "
                    f"message of conversation '{conversation.id}'."
                )
        if conversation.open_message_id is not None and conversation.open_message_id not in ids:
            raise ImportRefused(
                f"Conversation '{conversation.id}' opens on message "
                f"{conversation.open_message_id}, which it does not hold."
            )


def check_images(export: ExportV4) -> None:
    """Every image a message names is in the file, decodes, is an image and has its hash."""
    for sha256, stored in export.images.items():
        try:
            data = base64.b64decode(stored.data, validate=True)
            image = valid_image(data, f"Image {sha256[:12]}")
        except (ValueError, InvalidInput) as error:
            raise ImportRefused(f"The file holds a damaged image: {error}") from error
        if image.sha256 != sha256:
            raise ImportRefused(f"Image {sha256[:12]} does not match its hash.")
    for conversation in export.conversations:
        for message in conversation.messages:
            if missing := [h for h in message.images if h not in export.images]:
                raise ImportRefused(
                    f"Message {message.id} names an image the file does not hold: "
                    f"{missing[0][:12]}."
                )


def validation_message(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()[:MAX_ERRORS_SHOWN]
    ]
    more = error.error_count() - len(problems)
    suffix = f" (and {more} more)" if more > 0 else ""
    return "The file does not match the export format: " + "; ".join(problems) + suffix


def refuse_duplicates(export: ExportV4) -> None:
    kinds = {
        "conversation": [c.id for c in export.conversations],
        "message": [m.id for c in export.conversations for m in c.messages],
        "run": [r.id for c in export.conversations for m in c.messages for r in m.runs],
    }
    for kind, ids in kinds.items():
        repeated = [value for value, count in Counter(ids).items() if count > 1]
        if repeated:
            shown = ", ".join(map(str, repeated[:MAX_ERRORS_SHOWN]))
            raise ImportRefused(f"The file holds the same {kind} id more than once: {shown}.")


def import_json(db: Database, data: bytes) -> ImportReport:
    """Validate the whole file, then add its new conversations in one transaction."""
    export = parse_export(data)
    try:  # the transaction rolls back whole on any refusal
        with db.transaction() as cur:
            present = queries.existing_ids(cur, [c.id for c in export.conversations])
            incoming = [c for c in export.conversations if c.id not in present]
            messages, runs, run_ids = insert_conversations(cur, incoming, export.images)
            if export.evaluation is not None:
                import_evaluation(cur, export.evaluation, run_ids)
    except InvalidInput as error:
        if isinstance(error, ImportRefused):
            raise
        raise ImportRefused(str(error)) from error
    return ImportReport(
        imported=[c.id for c in incoming],
        skipped=[c.id for c in export.conversations if c.id in present],
        messages=messages,
        runs=runs,
        skipped_titles=[c.title for c in export.conversations if c.id in present],
    )


def insert_conversations(
    cur: duckdb.DuckDBPyConnection,
    conversations: list[ConversationV4],
    images: dict[str, ImageV2] | None = None,
) -> tuple[int, int, dict[int, int]]:
    """Bulk-insert through Arrow, with fresh message and run ids in the file's order (a parent
    keeps coming before its answers); returns the counts and each run's new id by its id in the
    file. A fork whose original is not in the file keeps its text without the original's runs."""
    messages = [(c.id, m) for c in conversations for m in c.messages]
    runs = [
        (c.id, m.id, r)
        for c, m in ((c, m) for c in conversations for m in c.messages)
        for r in m.runs
    ]
    message_ids = dict(
        zip(
            sorted(m.id for _, m in messages),
            queries.reserve_ids(cur, "messages_id_seq", len(messages)),
            strict=True,
        )
    )
    run_ids = dict(
        zip(
            sorted(r.id for _, _, r in runs),
            queries.reserve_ids(cur, "runs_id_seq", len(runs)),
            strict=True,
        )
    )
    queries.insert_rows(
        cur,
        "conversations",
        [
            {"id": c.id, "title": c.title, "created_at": c.created_at, "updated_at": c.updated_at}
            for c in conversations
        ],
    )
    queries.insert_rows(
        cur,
        "messages",
        [
            {
                "id": message_ids[m.id],
                "conversation_id": conversation_id,
                **m.model_dump(include={"role", "content", "created_at", "thinking"}),
                "parent_id": None if m.parent_id is None else message_ids[m.parent_id],
                "forked_from": message_ids.get(m.forked_from) if m.forked_from else None,
            }
            for conversation_id, m in messages
        ],
    )
    queries.insert_rows(
        cur,
        "open_branches",
        [
            {"conversation_id": c.id, "message_id": message_ids[c.open_message_id]}
            for c in conversations
            if c.open_message_id is not None
        ],
    )
    queries.insert_rows(
        cur,
        "runs",
        [
            {
                **r.model_dump(exclude={"options"}),
                "id": run_ids[r.id],
                "conversation_id": conversation_id,
                "message_id": message_ids[message_id],
                "options": json.dumps(r.options),
            }
            for conversation_id, message_id, r in runs
        ],
    )
    insert_images(cur, [(message_ids[m.id], m.images) for _, m in messages], images or {})
    return len(messages), len(runs), run_ids


def insert_images(
    cur: duckdb.DuckDBPyConnection,
    attached: list[tuple[int, list[str]]],
    images: dict[str, ImageV2],
) -> None:
    """The images the imported messages carry (checked by parse_export), each stored once."""
    wanted = {sha256 for _, hashes in attached for sha256 in hashes}
    image_store.save_images(
        cur,
        [
            Image(sha256, images[sha256].mime, base64.b64decode(images[sha256].data))
            for sha256 in sorted(wanted)
        ],
    )
    for message_id, hashes in attached:
        image_store.attach_images(cur, message_id, hashes)


class TransferService:
    """Export and import over the process's database, for the pages and the REST API."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def export_json(self, conversation_ids: list[str] | None = None) -> bytes:
        return export_json(self._db, conversation_ids)

    def export_markdown(self, conversation_ids: list[str] | None = None) -> str:
        return export_markdown(self._db, conversation_ids)

    def import_json(self, data: bytes) -> ImportReport:
        return import_json(self._db, data)
