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
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chatcore.chat import CONVERSATION_ID
from chatcore.errors import InvalidInput
from chatcore.evaluation_transfer import EvaluationV1, evaluation_document, import_evaluation
from chatcore.storage import transfer as queries
from chatcore.storage.db import Database
from chatcore.types import Metrics, RunStatus

FORMAT = "ollama-chat-dashboard/conversations"
VERSION = 1
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_ERRORS_SHOWN = 5

ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID.pattern)]
Role = Literal["system", "user", "assistant"]


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
    if conversation_ids is None:  # a whole export carries the evaluation too
        document["evaluation"] = evaluation_document(db)
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def conversation_documents(
    db: Database, conversation_ids: list[str] | None
) -> list[dict[str, Any]]:
    with db.cursor() as cur:
        conversations, messages, runs = queries.conversation_rows(
            cur, conversation_ids, MESSAGE_FIELDS, RUN_FIELDS
        )
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
        message["runs"] = runs_by_message.get(message["id"], [])
        messages_by_conversation.setdefault(message.pop("conversation_id"), []).append(message)
    for conversation in conversations:
        conversation["messages"] = messages_by_conversation.get(conversation["id"], [])
    return conversations


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
    """The line under a reply in a Markdown export: who answered, how much, how fast, how it
    ended. Worded like the app's caption (ui/formatting.py), which chatcore does not import."""
    metrics = Metrics(**{name: run[name] for name in Metrics.__dataclass_fields__})
    parts = [run["model"]]
    if metrics.completion_tokens is not None:
        parts.append(f"{metrics.completion_tokens} tokens")
    if (speed := metrics.tokens_per_second) is not None:
        parts.append(f"{speed:.1f} tok/s")
    if run["ttft_ms"] is not None:
        parts.append(f"first token {run['ttft_ms'] / 1000:.2f} s")
    if metrics.load_duration_ns is not None:
        parts.append(f"load {metrics.load_duration_ns / 1e9:.2f} s")
    if metrics.done_reason == "length":
        parts.append("cut at max tokens")
    if metrics.context_dropped:
        parts.append(f"{metrics.context_dropped} old messages left out to fit the context")
    if run["status"] == RunStatus.STOPPED:
        parts.append("stopped")
    if run["status"] == RunStatus.ERROR:
        parts.append(f"error: {run['error']}")
    return " · ".join(parts)


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
        present = queries.existing_ids(cur, [c.id for c in export.conversations])
        incoming = [c for c in export.conversations if c.id not in present]
        messages, runs, run_ids = insert_conversations(cur, incoming)
        if export.evaluation is not None:
            import_evaluation(cur, export.evaluation, run_ids)
    return ImportReport(
        imported=[c.id for c in incoming],
        skipped=[c.id for c in export.conversations if c.id in present],
        messages=messages,
        runs=runs,
    )


def insert_conversations(
    cur: duckdb.DuckDBPyConnection, conversations: list[ConversationV1]
) -> tuple[int, int, dict[int, int]]:
    """Bulk-insert through Arrow, with fresh message and run ids in the file's order; returns
    the counts and each run's new id by its id in the file."""
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
                **m.model_dump(include={"role", "content", "created_at", "superseded"}),
            }
            for conversation_id, m in messages
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
    return len(messages), len(runs), run_ids


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
