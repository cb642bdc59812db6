"""The JSON export (format 4) as the app built it before exports streamed: the whole document in
memory, from three queries. Kept to check the streaming export against it (tests) and to measure
the old path's memory beside the new one (bench.bigio)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from chatcore.evaluation_transfer import evaluation_document
from chatcore.storage import images as image_store
from chatcore.storage import transfer as queries
from chatcore.storage.db import Database

MESSAGE_FIELDS = ["id", "parent_id", "forked_from", "role", "content", "created_at", "thinking"]
RUN_FIELDS = [
    *("id", "model", "backend", "host", "options", "status", "error", "started_at"),
    *("finished_at", "ttft_ms", "prompt_tokens", "completion_tokens", "total_duration_ns"),
    *("load_duration_ns", "prompt_eval_duration_ns", "eval_duration_ns", "done_reason"),
    *("context_dropped", "prompt_chars", "num_ctx", "request_id", "attempts", "client"),
    *("answer_ms", "thinking_ms", "thinking_tokens", "answer_tokens"),
    # a run's fields added since (with defaults, so older files still import)
    *("context_summarised", "tool_calls"),
]


def reference_document(db: Database, conversation_ids: list[str] | None = None) -> dict[str, Any]:
    """The format 4 document of these conversations (all when None), built whole."""
    with db.cursor() as cur:
        conversations, messages, runs = queries.conversation_rows(
            cur, conversation_ids, MESSAGE_FIELDS, RUN_FIELDS
        )
        attached = image_store.image_rows(cur, [m["id"] for m in messages])
    images: dict[str, Any] = {}
    hashes_by_message: dict[int, list[str]] = {}
    for message_id, image in attached:
        images[image.sha256] = {"mime": image.mime, "data": base64.b64encode(image.data).decode()}
        hashes_by_message.setdefault(message_id, []).append(image.sha256)
    conversations, messages, runs = (
        [{name: iso(value) for name, value in row.items()} for row in rows]
        for rows in (conversations, messages, runs)
    )
    runs_by_message: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        run["options"] = json.loads(run["options"])
        runs_by_message.setdefault(run.pop("message_id"), []).append(run)
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        message["thinking"] = message["thinking"] or ""
        message["images"] = hashes_by_message.get(message["id"], [])
        message["runs"] = runs_by_message.get(message["id"], [])
        by_conversation.setdefault(message.pop("conversation_id"), []).append(message)
    for conversation in conversations:
        conversation["messages"] = by_conversation.get(conversation["id"], [])
    document: dict[str, Any] = {
        "format": "ollama-chat-dashboard/conversations",
        "version": 4,
        "conversations": conversations,
        "images": images,
    }
    if conversation_ids is None:
        document["evaluation"] = evaluation_document(db)
    return document


def reference_export(db: Database, conversation_ids: list[str] | None = None) -> bytes:
    return json.dumps(reference_document(db, conversation_ids), ensure_ascii=False).encode()


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
