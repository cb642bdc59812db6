"""Export conversations as JSON (lossless, versioned) or Markdown (for reading); import JSON.

An import is checked whole before anything is written (JSON syntax, format, version, every field's
type, ids unique within the file) and then applied in one transaction: it all lands or none of it.
Conversations already in the database are skipped by id and reported. Message and run ids are the
database's own surrogates: an import gives them fresh ids in the same order, so a file never
collides with what is already stored.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import duckdb
import pyarrow as pa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chatcore.backends.base import Metrics
from chatcore.captions import reply_caption
from chatcore.chat import CONVERSATION_ID
from chatcore.storage.db import Database

FORMAT = "ollama-chat-dashboard/conversations"
VERSION = 1
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_ERRORS_SHOWN = 5

ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID.pattern)]
RunStatus = Literal["streaming", "complete", "stopped", "error"]
Role = Literal["system", "user", "assistant"]


class ImportRefused(ValueError):
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
    status: RunStatus
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


@dataclass(frozen=True)
class ImportReport:
    imported: list[str]
    skipped: list[str]  # already present, left as they were
    messages: int
    runs: int


# --- export ---

MESSAGE_FIELDS = ["id", "role", "content", "created_at", "superseded"]
RUN_FIELDS = list(RunV1.model_fields)


def export_json(db: Database, conversation_ids: list[str] | None = None) -> bytes:
    """These conversations (all when None) as a JSON document of FORMAT, VERSION."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "conversations": conversation_documents(db, conversation_ids),
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def conversation_documents(
    db: Database, conversation_ids: list[str] | None
) -> list[dict[str, Any]]:
    chosen = "true" if conversation_ids is None else "c.id IN (SELECT unnest($ids))"
    params = {} if conversation_ids is None else {"ids": list(conversation_ids)}
    with db.cursor() as cur:
        conversations = rows_as_dicts(
            cur,
            f"SELECT id, title, created_at, updated_at FROM conversations c WHERE {chosen} "
            "ORDER BY created_at, id",
            params,
        )
        messages = rows_as_dicts(
            cur,
            f"SELECT conversation_id, {', '.join(MESSAGE_FIELDS)} FROM messages m "
            f"WHERE m.conversation_id IN (SELECT id FROM conversations c WHERE {chosen}) "
            "ORDER BY m.id",
            params,
        )
        runs = rows_as_dicts(
            cur,
            f"SELECT message_id, {', '.join(RUN_FIELDS)} FROM runs r "
            f"WHERE r.conversation_id IN (SELECT id FROM conversations c WHERE {chosen}) "
            "ORDER BY r.id",
            params,
        )
    runs_by_message: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        run["options"] = json.loads(run["options"])
        runs_by_message.setdefault(run.pop("message_id"), []).append(run)
    messages_by_conversation: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        message["runs"] = runs_by_message.get(message["id"], [])
        messages_by_conversation.setdefault(message.pop("conversation_id"), []).append(message)
    for conversation in conversations:
        conversation["messages"] = messages_by_conversation.get(conversation["id"], [])
    return conversations


def rows_as_dicts(
    cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    result = cur.execute(sql, params)
    names = [column[0] for column in result.description]
    return [
        {name: iso(value) for name, value in zip(names, row, strict=True)}
        for row in result.fetchall()
    ]


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def export_markdown(db: Database, conversation_ids: list[str] | None = None) -> str:
    """The visible dialogue of these conversations, for reading; regenerated replies left out."""
    parts = []
    for conversation in conversation_documents(db, conversation_ids):
        parts.append(f"# {conversation['title']}\n")
        parts.append(
            f"*Started {conversation['created_at'][:16].replace('T', ' ')}, last active "
            f"{conversation['updated_at'][:16].replace('T', ' ')}*\n"
        )
        for message in conversation["messages"]:
            if message["superseded"]:
                continue
            parts.append(f"**{message['role'].capitalize()}**\n\n{message['content']}\n")
            for run in message["runs"]:
                parts.append(f"*{markdown_caption(run)}*\n")
        parts.append("---\n")
    return "\n".join(parts)


def markdown_caption(run: dict[str, Any]) -> str:
    metrics = Metrics(**{name: run[name] for name in Metrics.__dataclass_fields__})
    caption = reply_caption(run["model"], metrics, run["ttft_ms"], run["status"])
    return caption + (f" · error: {run['error']}" if run["status"] == "error" else "")


# --- import ---


def parse_export(data: bytes) -> ExportV1:
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
    if document.get("version") != VERSION:
        raise ImportRefused(
            f"The file's format version is {document.get('version')!r}; "
            f"this app reads version {VERSION}."
        )
    try:  # strict: no "12" for 12, no 1 for true; datetimes are ISO strings with a zone
        export = ExportV1.model_validate_json(data)
    except ValidationError as error:
        raise ImportRefused(validation_message(error)) from error
    refuse_duplicates(export)
    return export


def validation_message(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()[:MAX_ERRORS_SHOWN]
    ]
    more = error.error_count() - len(problems)
    suffix = f" (and {more} more)" if more > 0 else ""
    return "The file does not match the export format: " + "; ".join(problems) + suffix


def refuse_duplicates(export: ExportV1) -> None:
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
    with db.transaction() as cur:
        present = existing_ids(cur, [c.id for c in export.conversations])
        incoming = [c for c in export.conversations if c.id not in present]
        messages, runs = insert_conversations(cur, incoming)
    return ImportReport(
        imported=[c.id for c in incoming],
        skipped=[c.id for c in export.conversations if c.id in present],
        messages=messages,
        runs=runs,
    )


def existing_ids(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> set[str]:
    rows = cur.execute(
        "SELECT id FROM conversations WHERE id IN (SELECT unnest(?))", [conversation_ids]
    ).fetchall()
    return {conversation_id for (conversation_id,) in rows}


def insert_conversations(
    cur: duckdb.DuckDBPyConnection, conversations: list[ConversationV1]
) -> tuple[int, int]:
    """Bulk-insert through Arrow, with fresh message and run ids in the file's order."""
    messages = [(c.id, m) for c in conversations for m in c.messages]
    runs = [
        (c.id, m.id, r)
        for c, m in ((c, m) for c in conversations for m in c.messages)
        for r in m.runs
    ]
    message_ids = dict(
        zip(
            sorted(m.id for _, m in messages),
            reserve_ids(cur, "messages_id_seq", len(messages)),
            strict=True,
        )
    )
    run_ids = dict(
        zip(
            sorted(r.id for _, _, r in runs),
            reserve_ids(cur, "runs_id_seq", len(runs)),
            strict=True,
        )
    )
    bulk_insert(
        cur,
        "conversations",
        [
            {"id": c.id, "title": c.title, "created_at": c.created_at, "updated_at": c.updated_at}
            for c in conversations
        ],
        CONVERSATION_SCHEMA,
    )
    bulk_insert(
        cur,
        "messages",
        [
            {
                "id": message_ids[m.id],
                "conversation_id": conversation_id,
                **m.model_dump(include={"role", "content", "created_at", "superseded"}),
            }
            for conversation_id, m in messages
        ],
        MESSAGE_SCHEMA,
    )
    bulk_insert(
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
        RUN_SCHEMA,
    )
    return len(messages), len(runs)


def reserve_ids(cur: duckdb.DuckDBPyConnection, sequence: str, count: int) -> list[int]:
    """`count` fresh values of a sequence, ascending; safe beside concurrent inserts."""
    if not count:
        return []
    rows = cur.execute(f"SELECT nextval('{sequence}') FROM range(?)", [count]).fetchall()
    return sorted(value for (value,) in rows)


TIMESTAMP = pa.timestamp("us", tz="UTC")
CONVERSATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("created_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ]
)
MESSAGE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("conversation_id", pa.string()),
        ("role", pa.string()),
        ("content", pa.string()),
        ("created_at", TIMESTAMP),
        ("superseded", pa.bool_()),
    ]
)
RUN_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("conversation_id", pa.string()),
        ("message_id", pa.int64()),
        ("model", pa.string()),
        ("backend", pa.string()),
        ("host", pa.string()),
        ("options", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("started_at", TIMESTAMP),
        ("finished_at", TIMESTAMP),
        ("ttft_ms", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_duration_ns", pa.int64()),
        ("load_duration_ns", pa.int64()),
        ("prompt_eval_duration_ns", pa.int64()),
        ("eval_duration_ns", pa.int64()),
        ("done_reason", pa.string()),
        ("context_dropped", pa.int64()),
        ("prompt_chars", pa.int64()),
        ("num_ctx", pa.int64()),
    ]
)


def bulk_insert(
    cur: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], schema: pa.Schema
) -> None:
    if not rows:
        return
    incoming = pa.Table.from_pylist(rows, schema=schema)
    columns = ", ".join(schema.names)
    cur.register("incoming", incoming)
    try:
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")
    finally:
        cur.unregister("incoming")
