"""The History page's questions: list, search, open, rename and delete conversations.

The list reads a per-conversation summary (visible messages, tokens, models) kept in
`conversation_summaries` (migration 2) instead of aggregating a million messages per request, and
search scans `message_search`, the visible messages already lowercased. Both are refreshed here,
on read, for the conversations whose `updated_at` moved since they were computed (every reply's end
touches it), so the send path has nothing extra to do.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import duckdb

from chatcore.chat import InvalidInput
from chatcore.storage import conversations as store
from chatcore.storage.db import Database

PAGE_SIZE = 50
SEARCH_LIMIT = 50
SNIPPET_CHARS = 160
# how far back a search looks first, widening while it finds fewer than SEARCH_LIMIT; None: all
SEARCH_WINDOWS: list[timedelta | None] = [timedelta(days=7), timedelta(days=60), None]
TITLE_MAX_CHARS = 200
SortKey = Literal["updated_at", "created_at", "title", "messages", "tokens"]
SORT_COLUMNS: dict[str, str] = {
    "updated_at": "c.updated_at",
    "created_at": "c.created_at",
    "title": "lower(c.title)",
    "messages": "s.messages",
    "tokens": "s.tokens",
}


@dataclass(frozen=True)
class Filters:
    """Conversations that used any of `models` and were active between the two dates (inclusive)."""

    models: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True)
class ConversationRow:
    id: str
    title: str
    models: list[str]
    messages: int
    tokens: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ListPage:
    rows: list[ConversationRow]
    total: int  # conversations matching the filters, on every page


@dataclass(frozen=True)
class SearchHit:
    id: str
    title: str
    updated_at: datetime
    snippet: str  # the first matching message around the match, or the title
    matching_messages: int


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    total: int  # matching conversations; `hits` holds at most the first SEARCH_LIMIT
    complete: bool  # False: only recent conversations were searched; `total` is a lower bound


@dataclass(frozen=True)
class OpenConversation:
    summary: ConversationRow
    messages: list[store.StoredMessage] = field(default_factory=list)


class HistoryService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._refresh_lock = threading.Lock()  # two sessions must not refresh the same rows

    # --- reading ---

    def list_conversations(
        self,
        filters: Filters = Filters(),
        sort: SortKey = "updated_at",
        descending: bool = True,
        page: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> ListPage:
        self.refresh_summaries()
        where, params = filter_clause(filters)
        order = f"{SORT_COLUMNS[sort]} {'DESC' if descending else 'ASC'}, c.id"
        with self.db.cursor() as cur:
            rows = cur.execute(
                f"""
                SELECT {ROW_COLUMNS}, count(*) OVER () FROM conversations c
                JOIN conversation_summaries s ON s.conversation_id = c.id
                WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?
                """,
                [*params, page_size, max(page, 0) * page_size],
            ).fetchall()
            if not rows and page > 0:  # past the end: the count still says how many there are
                total = self.list_conversations(filters, sort, descending, 0, 1).total
                return ListPage([], total)
        return ListPage([ConversationRow(*row[:-1]) for row in rows], rows[0][-1] if rows else 0)

    def search(self, text: str, filters: Filters = Filters()) -> SearchResult:
        """The most recently active conversations whose title or visible messages contain
        `text`, ignoring case.

        Recent weeks are searched first and the window widens only while fewer than
        SEARCH_LIMIT conversations match, so a common word costs a small scan and a rare one a
        full one. `message_search` is kept in order of activity, so a window skips the rest.
        """
        needle = text.strip()
        if not needle:
            return SearchResult([], 0, complete=True)
        self.refresh_summaries()
        with self.db.cursor() as cur:
            newest = cur.execute("SELECT max(updated_at) FROM conversations").fetchone()
            if newest is None or newest[0] is None:
                return SearchResult([], 0, complete=True)
            for window in SEARCH_WINDOWS:
                since = None if window is None else newest[0] - window
                rows = search_since(cur, needle, filters, since)
                if since is None or len(rows) >= SEARCH_LIMIT:
                    break
            texts = message_texts(cur, [row[3] for row in rows if row[3] is not None])
        hits = [
            SearchHit(id_, title, updated, snippet(texts.get(first, title), needle), count)
            for id_, title, updated, first, count, _ in rows
        ]
        return SearchResult(hits, rows[0][-1] if rows else 0, complete=since is None)

    def open(self, conversation_id: str) -> OpenConversation | None:
        """The conversation's row and its visible dialogue, each reply with its run."""
        self.refresh_summaries()
        with self.db.cursor() as cur:
            row = cur.execute(
                f"""
                SELECT {ROW_COLUMNS} FROM conversations c
                JOIN conversation_summaries s ON s.conversation_id = c.id WHERE c.id = ?
                """,
                [conversation_id],
            ).fetchone()
            if row is None:
                return None
            return OpenConversation(
                ConversationRow(*row), store.conversation_messages(cur, conversation_id)
            )

    def model_names(self) -> list[str]:
        """Every model any conversation used, for the filter (from the summaries: no big scan)."""
        self.refresh_summaries()
        with self.db.cursor() as cur:
            rows = cur.execute(
                "SELECT DISTINCT unnest(models) AS model FROM conversation_summaries ORDER BY model"
            ).fetchall()
        return [model for (model,) in rows]

    # --- changing ---

    def rename(self, conversation_id: str, title: str) -> str:
        """Give a conversation a new title; returns it as stored. Renaming is not activity."""
        title = " ".join(title.split())
        if not title:
            raise InvalidInput("A title can't be empty.")
        if len(title) > TITLE_MAX_CHARS:
            raise InvalidInput(f"A title has at most {TITLE_MAX_CHARS} characters.")
        with self.db.transaction() as cur:
            if not store.conversation_exists(cur, conversation_id):
                raise InvalidInput("That conversation no longer exists.")
            cur.execute("UPDATE conversations SET title = ? WHERE id = ?", [title, conversation_id])
        return title

    def delete(self, conversation_ids: list[str]) -> int:
        """Delete conversations with everything stored for them, in one transaction."""
        if not conversation_ids:
            return 0
        with self.db.transaction() as cur:
            return store.delete_conversations(cur, conversation_ids)

    # --- the summary ---

    def refresh_summaries(self) -> int:
        """Recompute the summary of every conversation changed since its summary was made.

        Cheap when nothing changed (a join of two small tables); returns how many were redone.
        """
        with self.db.cursor() as cur:  # the usual case, without taking the write lock
            if not stale_conversations(cur):
                return 0
        with self._refresh_lock, self.db.transaction() as cur:
            stale = stale_conversations(cur)
            if stale:
                write_summaries(cur, stale)
        return len(stale)


def stale_conversations(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        """
        SELECT c.id FROM conversations c
        LEFT JOIN conversation_summaries s ON s.conversation_id = c.id
        WHERE s.updated_at IS DISTINCT FROM c.updated_at
        """
    ).fetchall()
    return [conversation_id for (conversation_id,) in rows]


ROW_COLUMNS = "c.id, c.title, s.models, s.messages, s.tokens, c.created_at, c.updated_at"


FEW_STALE = 20  # up to this many, refresh one by one: indexed lookups beat full scans


def write_summaries(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> None:
    """(Re)compute these conversations' summaries and folded text from their messages and runs."""
    if len(conversation_ids) <= FEW_STALE:
        for conversation_id in conversation_ids:
            write_summary_rows(cur, "= ?", conversation_id)
    else:
        write_summary_rows(cur, "IN (SELECT unnest(?))", conversation_ids)


def forget_folded_text(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> None:
    """Delete one conversation's folded rows. They carry its summary's time: a filter on that
    constant lets DuckDB skip every block of the table written at other times."""
    row = cur.execute(
        "SELECT updated_at FROM conversation_summaries WHERE conversation_id = ?", [conversation_id]
    ).fetchone()
    if row is not None:
        cur.execute(
            "DELETE FROM message_search WHERE active_at = ? AND conversation_id = ?",
            [row[0], conversation_id],
        )


def write_summary_rows(cur: duckdb.DuckDBPyConnection, chosen: str, ids: str | list[str]) -> None:
    """The rows of the conversations whose id matches `chosen` (SQL taking `ids`)."""
    if isinstance(ids, str):
        forget_folded_text(cur, ids)
    else:
        cur.execute(f"DELETE FROM message_search WHERE conversation_id {chosen}", [ids])
    cur.execute(f"DELETE FROM conversation_summaries WHERE conversation_id {chosen}", [ids])
    # appended in order of activity: the newest rows stay together at the end for search windows
    cur.execute(
        f"""
        INSERT INTO message_search
        SELECT m.id, m.conversation_id, c.updated_at, lower(m.content)
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.conversation_id {chosen} AND NOT m.superseded
        ORDER BY c.updated_at, m.id
        """,
        [ids],
    )
    cur.execute(
        f"""
        INSERT INTO conversation_summaries
        WITH counted AS (
            SELECT conversation_id, count(*) FILTER (WHERE NOT superseded) AS messages
            FROM messages WHERE conversation_id {chosen} GROUP BY conversation_id
        ),
        used AS (
            SELECT conversation_id, list(DISTINCT model ORDER BY model) AS models,
                sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) AS tokens
            FROM runs WHERE conversation_id {chosen} GROUP BY conversation_id
        )
        SELECT c.id, c.updated_at, coalesce(counted.messages, 0), coalesce(used.tokens, 0),
            coalesce(used.models, [])
        FROM conversations c
        LEFT JOIN counted ON counted.conversation_id = c.id
        LEFT JOIN used ON used.conversation_id = c.id
        WHERE c.id {chosen}
        """,
        [ids, ids, ids],
    )


def search_since(
    cur: duckdb.DuckDBPyConnection, needle: str, filters: Filters, since: datetime | None
) -> list[tuple[Any, ...]]:
    """Matching conversations active since `since` (all when None), newest first."""
    where, params = filter_clause(filters)
    recent = "true" if since is None else "active_at >= ?"
    window = [] if since is None else [since]
    return cur.execute(
        f"""
        WITH matched AS (
            SELECT conversation_id, min(message_id) AS first, count(*) AS hits
            FROM message_search WHERE {recent} AND contains(folded, lower(?))
            GROUP BY conversation_id
        )
        SELECT c.id, c.title, c.updated_at, m.first, coalesce(m.hits, 0), count(*) OVER ()
        FROM conversations c
        JOIN conversation_summaries s ON s.conversation_id = c.id
        LEFT JOIN matched m ON m.conversation_id = c.id
        WHERE (m.conversation_id IS NOT NULL OR contains(lower(c.title), lower(?)))
            AND {where} AND {recent.replace("active_at", "c.updated_at")}
        ORDER BY c.updated_at DESC, c.id LIMIT ?
        """,
        [*window, needle, needle, *params, *window, SEARCH_LIMIT],
    ).fetchall()


def message_texts(cur: duckdb.DuckDBPyConnection, message_ids: list[int]) -> dict[int, str]:
    rows = cur.execute(
        "SELECT id, content FROM messages WHERE id IN (SELECT unnest(?))", [message_ids]
    ).fetchall()
    return dict(rows)


def filter_clause(filters: Filters) -> tuple[str, list[object]]:
    """SQL over `c` (conversations) and `s` (their summaries), with its parameters."""
    clauses, params = ["true"], []
    if filters.models:
        clauses.append("list_has_any(s.models, ?::VARCHAR[])")
        params.append(list(filters.models))
    if filters.since is not None:  # active on or after that day
        clauses.append("c.updated_at >= ?")
        params.append(datetime.combine(filters.since, time.min).astimezone())
    if filters.until is not None:  # started on or before that day
        clauses.append("c.created_at < ?")
        params.append(datetime.combine(filters.until + timedelta(days=1), time.min).astimezone())
    return " AND ".join(clauses), params


def snippet(content: str, needle: str, width: int = SNIPPET_CHARS) -> str:
    """A window of `content` around the first match of `needle`, on one line."""
    flat = " ".join(content.split())
    match = re.search(re.escape(" ".join(needle.split())), flat, re.IGNORECASE)
    if match is None:
        return flat[:width] + ("…" if len(flat) > width else "")
    start = max(0, match.start() - (width - len(needle)) // 2)
    end = min(len(flat), start + width)
    start = max(0, end - width)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
