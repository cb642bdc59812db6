"""Queries over conversations, messages and runs; each takes the cursor of its unit of work.

Any write that changes a conversation's messages or runs also changes its `updated_at`, in the same
or a later transaction (a reply's end calls touch_conversation): the History summary is refreshed
by it (chatcore/history.py).
"""

from __future__ import annotations

import duckdb

from chatcore.storage import rollup
from chatcore.storage.runs import column_positions, run_reader, run_select
from chatcore.types import (
    ChatMessage,
    ConversationSummary,
    RunStatus,
    SidebarEntry,
    StoredMessage,
)


def conversation_exists(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> bool:
    row = cur.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    return row is not None


def create_conversation(cur: duckdb.DuckDBPyConnection, conversation_id: str, title: str) -> None:
    cur.execute("INSERT INTO conversations (id, title) VALUES (?, ?)", [conversation_id, title])


def touch_conversation(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> None:
    cur.execute("UPDATE conversations SET updated_at = now() WHERE id = ?", [conversation_id])


def add_message(
    cur: duckdb.DuckDBPyConnection,
    conversation_id: str,
    role: str,
    content: str,
    parent_id: int | None = None,
) -> int:
    """A new message after `parent_id` (None: a first message); returns its id."""
    row = cur.execute(
        "INSERT INTO messages (conversation_id, role, content, parent_id) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        [conversation_id, role, content, parent_id],
    ).fetchone()
    assert row is not None
    return int(row[0])


def checkpoint_text(
    cur: duckdb.DuckDBPyConnection, message_id: int, text: str, thinking: str | None = None
) -> None:
    """Save a reply's answer text so far, and its reasoning when given (kept apart)."""
    if thinking is None:
        cur.execute("UPDATE messages SET content = ? WHERE id = ?", [text, message_id])
    else:
        cur.execute(
            "UPDATE messages SET content = ?, thinking = ? WHERE id = ?",
            [text, thinking, message_id],
        )


def has_images(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> bool:
    row = cur.execute(
        """
        SELECT 1 FROM message_images mi JOIN messages m ON m.id = mi.message_id
        WHERE m.conversation_id = ? LIMIT 1
        """,
        [conversation_id],
    ).fetchone()
    return row is not None


# A message's run: its own, or for a forked copy the original's (a run is stored, and counted,
# once). The alias is the message's.
RUN_OF = "coalesce({m}.forked_from, {m}.id)"


def context_messages(
    cur: duckdb.DuckDBPyConnection,
    conversation_id: str,
    path: list[int],
    with_images: bool = False,
) -> list[ChatMessage]:
    """The dialogue as a model sees it: the messages of `path` (a branch, root first), without
    replies that failed empty, and never a reply's reasoning (only its answer goes back). With
    `with_images`, each user message carries its image files."""
    images = (
        """(SELECT list(i.data ORDER BY mi.position)
            FROM message_images mi JOIN images i ON i.sha256 = mi.sha256
            WHERE mi.message_id = m.id)"""
        if with_images
        else "NULL"
    )
    rows = cur.execute(
        f"""
        SELECT m.role, m.content, {images} FROM messages m
        LEFT JOIN runs r ON r.message_id = {RUN_OF.format(m="m")}
        WHERE m.conversation_id = ? AND m.id IN (SELECT unnest(?))
          AND NOT (m.role = 'assistant' AND (m.content = '' OR r.status IS NOT DISTINCT FROM ?))
        ORDER BY m.id
        """,
        [conversation_id, path, RunStatus.ERROR.value],
    ).fetchall()
    return [context_message(role, content, attached) for role, content, attached in rows]


def context_message(role: str, content: str, images: list[bytes] | None) -> ChatMessage:
    message = ChatMessage(role=role, content=content)
    if images:
        message["images"] = [bytes(image) for image in images]
    return message


def conversation_messages(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, only: list[int] | None = None
) -> list[StoredMessage]:
    """The conversation's messages (every branch; with `only`, those ids) with each reply's run,
    oldest first. The open branch is chatcore/storage/trees.py's `branch_messages`."""
    chosen = "true" if only is None else "m.id IN (SELECT unnest($only))"
    params: dict[str, object] = {"conversation": conversation_id}
    if only is not None:
        params["only"] = only
    result = cur.execute(
        f"""
        WITH attached AS (  -- most conversations have no images: one small join, not a lookup a row
            SELECT mi.message_id, list(mi.sha256 ORDER BY mi.position) AS images
            FROM message_images mi JOIN messages m ON m.id = mi.message_id
            WHERE m.conversation_id = $conversation GROUP BY mi.message_id
        )
        SELECT m.id, m.role, m.content, m.created_at, coalesce(m.thinking, '') AS thinking,
            a.images, m.parent_id, {run_select("r")}
        FROM messages m LEFT JOIN runs r ON r.message_id = {RUN_OF.format(m="m")}
        LEFT JOIN attached a ON a.message_id = m.id
        WHERE m.conversation_id = $conversation AND {chosen} ORDER BY m.id
        """,
        params,
    )
    at = column_positions(result)
    read_run = run_reader(at)
    id_, role, content, created_at, thinking, images, parent = (
        at[name]
        for name in ("id", "role", "content", "created_at", "thinking", "images", "parent_id")
    )
    return [
        StoredMessage(
            id=row[id_],
            role=row[role],
            content=row[content],
            created_at=row[created_at],
            run=read_run(row),
            thinking=row[thinking] or "",
            images=tuple(row[images] or ()),
            parent_id=row[parent],
        )
        for row in result.fetchall()
    ]


SUMMARY_SELECT = """
    SELECT c.id, c.title, c.created_at, c.updated_at,
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id),
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


SIDEBAR_SCAN = 10  # newest conversations looked at per entry asked for, before looking at all
EVERY_ROW = 2**62  # a LIMIT that keeps every row


def sidebar_entries(cur: duckdb.DuckDBPyConnection, limit: int = 20) -> list[SidebarEntry]:
    """The newest conversations, the columns of one Compare round folded into one entry with the
    models it compared (in column order; none named while a blind round waits for its vote; models
    working together by their collaboration's name). The steps of a collaboration before its
    answer are left out: they are its workings, in History, not conversations of their own.

    Drawn on every page: it folds only the newest conversations (and the rest of their rounds),
    which hold the newest entries whenever they make up `limit` of them; else it folds them all."""
    scan = limit * SIDEBAR_SCAN
    entries = folded_entries(cur, limit, scan)
    if len(entries) < limit and conversation_count(cur) > scan:
        entries = folded_entries(cur, limit, scan=None)
    return entries


def conversation_count(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.execute("SELECT count(*) FROM conversations").fetchone()
    return int(row[0]) if row else 0


def sidebar_fingerprint(cur: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """What the sidebar's entries are folded from, in a few numbers that change whenever it does:
    every conversation's id, title and last activity, and the rows of rounds, votes and
    collaboration steps (each only ever added or deleted)."""
    row = cur.execute(
        """
        SELECT count(*), max(updated_at), bit_xor(hash(id, title, updated_at)),
            (SELECT count(*) FROM compare_entries), (SELECT count(*) FROM votes),
            (SELECT count(*) FROM collaboration_steps)
        FROM conversations
        """
    ).fetchone()
    return tuple(row) if row else ()


def folded_entries(
    cur: duckdb.DuckDBPyConnection, limit: int, scan: int | None
) -> list[SidebarEntry]:
    """The newest `limit` sidebar entries among the newest `scan` conversations (None: all)."""
    rows = cur.execute(
        """
        WITH newest AS (
            SELECT id FROM conversations ORDER BY updated_at DESC, id LIMIT $scan
        ),
        scanned AS (  -- with every column of a Compare round one of them is in
            SELECT id FROM newest
            UNION
            SELECT other.conversation_id FROM compare_entries e
            JOIN compare_entries other ON other.round_id = e.round_id
            WHERE e.conversation_id IN (SELECT id FROM newest)
        ),
        workings AS (
            SELECT m.conversation_id FROM collaboration_steps s
            JOIN runs r ON r.id = s.run_id JOIN messages m ON m.id = r.message_id
            WHERE s.step < (SELECT max(f.step) FROM collaboration_steps f
                            WHERE f.group_id = s.group_id)
        ),
        columns AS (  -- the scanned conversations that are a Compare round's columns
            SELECT e.conversation_id, e.round_id, e.position,
                   CASE WHEN cr.blind AND v.id IS NULL THEN '?'
                        ELSE coalesce(s.collaboration, r.model) END AS model
            FROM compare_entries e
            LEFT JOIN runs r ON r.id = e.run_id
            LEFT JOIN collaboration_steps s ON s.run_id = e.run_id
            LEFT JOIN compare_rounds cr ON cr.id = e.round_id
            LEFT JOIN votes v ON v.round_id = e.round_id
            WHERE e.conversation_id IN (SELECT id FROM scanned)
        ),
        listed AS (
            SELECT c.id, c.title, c.updated_at, k.round_id, k.position, k.model,
                   coalesce('r' || k.round_id, 'c' || c.id) AS entry
            FROM conversations c LEFT JOIN columns k ON k.conversation_id = c.id
            WHERE c.id IN (SELECT id FROM scanned)
                AND c.id NOT IN (SELECT conversation_id FROM workings)
        )
        SELECT arg_min(id, coalesce(position, 0)), arg_min(title, coalesce(position, 0)),
               any_value(round_id), list(model ORDER BY position) FILTER (model IS NOT NULL),
               max(updated_at) AS newest
        FROM listed GROUP BY entry
        ORDER BY newest DESC, 1 LIMIT $limit
        """,
        {"limit": limit, "scan": scan if scan is not None else EVERY_ROW},
    ).fetchall()
    return [
        SidebarEntry(conversation_id, title, round_id, tuple(models or ()))
        for conversation_id, title, round_id, models, _ in rows
    ]


def get_conversation(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> ConversationSummary | None:
    row = cur.execute(f"{SUMMARY_SELECT} WHERE c.id = ?", [conversation_id]).fetchone()
    return None if row is None else ConversationSummary(*row)


# Every table holding rows of a conversation, children first. Deleting conversations runs each
# statement in one transaction, so a table added later adds its DELETE here, before the tables its
# rows point to, and delete needs nothing else.
HEIRS = """(
    SELECT c.forked_from AS original, min(c.id) AS heir, arg_min(c.conversation_id, c.id) AS owner
    FROM messages c
    WHERE c.forked_from IN (SELECT id FROM messages WHERE conversation_id IN (SELECT unnest($ids)))
        AND c.conversation_id NOT IN (SELECT unnest($ids))
    GROUP BY c.forked_from
) h"""

CONVERSATION_CLEANUP: list[str] = [
    # Forks outlive their original: a deleted reply's run passes to its oldest surviving copy
    # (still counted once), which the other copies then point at. Its summary is redone.
    f"UPDATE conversations c SET updated_at = now() FROM {HEIRS} WHERE c.id = h.owner",
    f"""
    UPDATE runs r SET message_id = h.heir, conversation_id = h.owner FROM {HEIRS}
    WHERE r.message_id = h.original
    """,
    f"""
    UPDATE messages m SET forked_from = h.heir FROM {HEIRS}
    WHERE m.forked_from = h.original AND m.id <> h.heir
    """,
    """
    UPDATE messages SET forked_from = NULL
    WHERE forked_from IN (SELECT id FROM messages WHERE conversation_id IN (SELECT unnest($ids)))
        AND conversation_id NOT IN (SELECT unnest($ids))
    """,
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
    # Suites: votes and verdicts on one of these answers, collaboration steps, the cells
    # (a deleted cell is sent again when its run is resumed).
    """
    DELETE FROM pair_votes WHERE a_run_id IN (SELECT id FROM runs WHERE conversation_id IN
        (SELECT unnest($ids))) OR b_run_id IN (SELECT id FROM runs WHERE conversation_id IN
        (SELECT unnest($ids)))
    """,
    """
    DELETE FROM judge_verdicts WHERE a_run_id IN (SELECT id FROM runs WHERE conversation_id IN
        (SELECT unnest($ids))) OR b_run_id IN (SELECT id FROM runs WHERE conversation_id IN
        (SELECT unnest($ids)))
    """,
    """
    DELETE FROM collaboration_steps WHERE run_id IN
        (SELECT id FROM runs WHERE conversation_id IN (SELECT unnest($ids)))
    """,
    "DELETE FROM suite_cells WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM run_context WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM context_summaries WHERE conversation_id IN (SELECT unnest($ids))",
    # Stats: the rollup's days are rebuilt after the delete; its list of hits names them
    "DELETE FROM run_context_hits WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM runs WHERE conversation_id IN (SELECT unnest($ids))",
    # Attached images: the links go; an image no message carries any more goes too.
    """
    DELETE FROM message_images WHERE message_id IN
        (SELECT id FROM messages WHERE conversation_id IN (SELECT unnest($ids)))
    """,
    "DELETE FROM messages WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM open_branches WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM conversation_summaries WHERE conversation_id IN (SELECT unnest($ids))",
    # Stats' numbers of conversations (the rollup is rebuilt after these statements)
    "DELETE FROM run_conversation_numbers WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM message_search WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM search_words WHERE conversation_id IN (SELECT unnest($ids))",
    "DELETE FROM conversations WHERE id IN (SELECT unnest($ids))",
    """
    DELETE FROM images i
    WHERE NOT EXISTS (SELECT 1 FROM message_images mi WHERE mi.sha256 = i.sha256)
    """,
]


def delete_conversations(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> int:
    """Delete these conversations and all their rows; returns how many conversations went.

    Run it inside a transaction: there are no foreign keys, the statements together are the
    guarantee that nothing is left orphaned."""
    ids = {"ids": list(conversation_ids)}
    row = cur.execute(
        "SELECT count(*) FROM conversations WHERE id IN (SELECT unnest($ids))", ids
    ).fetchone()
    of_these = "conversation_id IN (SELECT unnest($ids))"
    days = rollup.days_of_runs(cur, of_these, ids)
    first_id = rollup.first_id_of_runs(cur, of_these, ids)
    for statement in CONVERSATION_CLEANUP:
        cur.execute(statement, ids if "$ids" in statement else None)
    rollup.rebuild_days(cur, days, first_id)  # Stats forgets them too
    return int(row[0]) if row else 0
