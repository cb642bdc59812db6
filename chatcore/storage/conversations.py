"""Queries over conversations, messages and runs; each takes the cursor of its unit of work.

Any write that changes a conversation's messages or runs also changes its `updated_at`, in the same
or a later transaction (a reply's end calls touch_conversation): the History summary is refreshed
by it (chatcore/history.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from chatcore.backends.base import ChatMessage, Metrics


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    models: list[str]


@dataclass(frozen=True)
class RunRecord:
    id: int
    model: str
    backend: str
    host: str
    status: str
    error: str | None
    ttft_ms: float | None
    options: dict[str, Any]
    metrics: Metrics


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    created_at: datetime
    run: RunRecord | None


def conversation_exists(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> bool:
    row = cur.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    return row is not None


def create_conversation(cur: duckdb.DuckDBPyConnection, conversation_id: str, title: str) -> None:
    cur.execute("INSERT INTO conversations (id, title) VALUES (?, ?)", [conversation_id, title])


def touch_conversation(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> None:
    cur.execute("UPDATE conversations SET updated_at = now() WHERE id = ?", [conversation_id])


def add_message(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, role: str, content: str
) -> int:
    row = cur.execute(
        "INSERT INTO messages (conversation_id, role, content) VALUES (?, ?, ?) RETURNING id",
        [conversation_id, role, content],
    ).fetchone()
    assert row is not None
    return int(row[0])


def start_run(
    cur: duckdb.DuckDBPyConnection,
    *,
    conversation_id: str,
    message_id: int,
    model: str,
    backend: str,
    host: str,
    options: dict[str, Any],
    prompt_chars: int,
) -> int:
    """A run in status 'streaming'; prompt_chars (the whole prompt's length) lets Stats spot
    prompts that a server silently cut to fit its context window."""
    row = cur.execute(
        """
        INSERT INTO runs
            (conversation_id, message_id, model, backend, host, options, status, prompt_chars)
        VALUES (?, ?, ?, ?, ?, ?, 'streaming', ?) RETURNING id
        """,
        [conversation_id, message_id, model, backend, host, json.dumps(options), prompt_chars],
    ).fetchone()
    assert row is not None
    return int(row[0])


def checkpoint_text(cur: duckdb.DuckDBPyConnection, message_id: int, text: str) -> None:
    cur.execute("UPDATE messages SET content = ? WHERE id = ?", [text, message_id])


def finish_run(
    cur: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    status: str,
    error: str | None,
    ttft_ms: float | None,
    metrics: Metrics,
) -> None:
    cur.execute(
        """
        UPDATE runs SET status = ?, error = ?, ttft_ms = ?, finished_at = now(),
            prompt_tokens = ?, completion_tokens = ?, total_duration_ns = ?, load_duration_ns = ?,
            prompt_eval_duration_ns = ?, eval_duration_ns = ?, done_reason = ?, context_dropped = ?,
            num_ctx = ?
        WHERE id = ?
        """,
        [
            status,
            error,
            ttft_ms,
            metrics.prompt_tokens,
            metrics.completion_tokens,
            metrics.total_duration_ns,
            metrics.load_duration_ns,
            metrics.prompt_eval_duration_ns,
            metrics.eval_duration_ns,
            metrics.done_reason,
            metrics.context_dropped,
            metrics.num_ctx,
            run_id,
        ],
    )


def supersede_last_reply(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> bool:
    """Hide the newest reply from the dialogue (it stays stored) so it can be regenerated."""
    row = cur.execute(
        """
        SELECT id, role FROM messages
        WHERE conversation_id = ? AND NOT superseded ORDER BY id DESC LIMIT 1
        """,
        [conversation_id],
    ).fetchone()
    if row is None or row[1] != "assistant":
        return False
    cur.execute("UPDATE messages SET superseded = true WHERE id = ?", [row[0]])
    return True


def context_messages(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> list[ChatMessage]:
    """The dialogue as a model sees it: visible turns, without replies that failed empty."""
    rows = cur.execute(
        """
        SELECT m.role, m.content FROM messages m
        LEFT JOIN runs r ON r.message_id = m.id
        WHERE m.conversation_id = ? AND NOT m.superseded
          AND NOT (m.role = 'assistant' AND (m.content = '' OR r.status = 'error'))
        ORDER BY m.id
        """,
        [conversation_id],
    ).fetchall()
    return [ChatMessage(role=role, content=content) for role, content in rows]


MESSAGE_COLUMNS = """
    m.id, m.role, m.content, m.created_at,
    r.id, r.model, r.backend, r.host, r.status, r.error, r.ttft_ms, r.options,
    r.prompt_tokens, r.completion_tokens, r.total_duration_ns, r.load_duration_ns,
    r.prompt_eval_duration_ns, r.eval_duration_ns, r.done_reason, r.context_dropped, r.num_ctx
"""


def conversation_messages(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> list[StoredMessage]:
    """The visible dialogue with each reply's run, oldest first."""
    rows = cur.execute(
        f"""
        SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN runs r ON r.message_id = m.id
        WHERE m.conversation_id = ? AND NOT m.superseded ORDER BY m.id
        """,
        [conversation_id],
    ).fetchall()
    return [stored_message(row) for row in rows]


def stored_message(row: tuple[Any, ...]) -> StoredMessage:
    message_id, role, content, created_at, run_id, *run = row
    return StoredMessage(
        id=message_id,
        role=role,
        content=content,
        created_at=created_at,
        run=None if run_id is None else run_record(run_id, run),
    )


def run_record(run_id: int, run: list[Any]) -> RunRecord:
    model, backend, host, status, error, ttft_ms, options, *metrics = run
    return RunRecord(
        id=run_id,
        model=model,
        backend=backend,
        host=host,
        status=status,
        error=error,
        ttft_ms=ttft_ms,
        options=json.loads(options) if isinstance(options, str) else (options or {}),
        metrics=Metrics(*metrics),
    )


SUMMARY_SELECT = """
    SELECT c.id, c.title, c.created_at, c.updated_at,
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND NOT m.superseded),
        coalesce((SELECT list(DISTINCT r.model ORDER BY r.model) FROM runs r
                  WHERE r.conversation_id = c.id), [])
    FROM conversations c
"""


def recent_conversations(
    cur: duckdb.DuckDBPyConnection, limit: int = 20
) -> list[ConversationSummary]:
    rows = cur.execute(
        f"{SUMMARY_SELECT} ORDER BY c.updated_at DESC, c.id LIMIT ?", [limit]
    ).fetchall()
    return [ConversationSummary(*row) for row in rows]


def recent_titles(cur: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple[str, str]]:
    rows = cur.execute(
        "SELECT id, title FROM conversations ORDER BY updated_at DESC, id LIMIT ?", [limit]
    ).fetchall()
    return [(conversation_id, title) for conversation_id, title in rows]


def get_conversation(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> ConversationSummary | None:
    row = cur.execute(f"{SUMMARY_SELECT} WHERE c.id = ?", [conversation_id]).fetchone()
    return None if row is None else ConversationSummary(*row)


# Every table holding rows of a conversation, children first. Deleting conversations runs each
# statement in one transaction, so a table added later adds its DELETE here, before the tables its
# rows point to, and delete needs nothing else.
CONVERSATION_CLEANUP: list[str] = [
    # Compare: votes that judged one of these answers,
    # their columns, then rounds left with no column.
    """
    DELETE FROM votes WHERE round_id IN
        (SELECT round_id FROM compare_entries WHERE conversation_id IN (SELECT unnest($ids)))
    """,
    "DELETE FROM compare_entries WHERE conversation_id IN (SELECT unnest($ids))",
    """
    DELETE FROM compare_rounds c
    WHERE NOT EXISTS (SELECT 1 FROM compare_entries e WHERE e.round_id = c.id)
    """,
    "DELETE FROM runs WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM messages WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM conversation_summaries WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM message_search WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM conversations WHERE id IN (SELECT unnest($ids))",
]


def delete_conversations(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> int:
    """Delete these conversations and all their rows; returns how many conversations went.

    Run it inside a transaction: there are no foreign keys, the statements together are the
    guarantee that nothing is left orphaned."""
    ids = {"ids": list(conversation_ids)}
    row = cur.execute(
        "SELECT count(*) FROM conversations WHERE id IN (SELECT unnest($ids))", ids
    ).fetchone()
    for statement in CONVERSATION_CLEANUP:
        cur.execute(statement, ids if "$ids" in statement else None)
    return int(row[0]) if row else 0
