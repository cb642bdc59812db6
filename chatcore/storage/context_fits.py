"""How each run's prompt was fitted into its context window, and what that teaches the next."""

from __future__ import annotations

import duckdb

from chatcore.types import RunStatus

CORRECTION_RUNS = 5  # the newest fitted replies a correction learns from


def record_fit(
    cur: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    conversation_id: str,
    model: str,
    estimated_tokens: int,
    window_tokens: int,
    dropped: int,
    summarised: int = 0,
) -> None:
    cur.execute(
        "INSERT INTO run_context (run_id, conversation_id, model, estimated_tokens, "
        "window_tokens, dropped, summarised) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [run_id, conversation_id, model, estimated_tokens, window_tokens, dropped, summarised],
    )


def counted_and_estimated(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, model: str
) -> tuple[int, int] | None:
    """(tokens the model counted, tokens the app estimated) over the conversation's newest
    complete replies by `model` that were fitted; None when there are none yet."""
    row = cur.execute(
        """
        SELECT sum(prompt_tokens), sum(estimated_tokens) FROM (
            SELECT r.prompt_tokens, c.estimated_tokens
            FROM run_context c JOIN runs r ON r.id = c.run_id
            WHERE c.conversation_id = ? AND c.model = ? AND r.status = ?
              AND r.prompt_tokens > 0
            ORDER BY c.run_id DESC LIMIT ?
        )
        """,
        [conversation_id, model, RunStatus.COMPLETE.value, CORRECTION_RUNS],
    ).fetchone()
    if row is None or row[0] is None or not row[1]:
        return None
    return int(row[0]), int(row[1])


def save_summary(
    cur: duckdb.DuckDBPyConnection,
    *,
    conversation_id: str,
    covered: int,
    covered_hash: str,
    model: str,
    summary: str,
) -> None:
    cur.execute(
        "INSERT INTO context_summaries (conversation_id, covered, covered_hash, model, summary) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, covered_hash) DO UPDATE "
        "SET summary = excluded.summary, model = excluded.model, created_at = now()",
        [conversation_id, covered, covered_hash, model, summary],
    )


def summaries(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> list[tuple[int, str, str]]:
    """(covered, covered_hash, summary) of the conversation's summaries, the widest first."""
    rows = cur.execute(
        "SELECT covered, covered_hash, summary FROM context_summaries "
        "WHERE conversation_id = ? ORDER BY covered DESC, created_at DESC",
        [conversation_id],
    ).fetchall()
    return [(int(covered), str(digest), str(text)) for covered, digest, text in rows]
