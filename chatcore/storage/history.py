"""The History page's queries: list, search, open and rename conversations, and their summaries.

The list reads a per-conversation summary (visible messages, tokens, models) kept in
`conversation_summaries` (migration 2) instead of aggregating a million messages per request, and
search reads `search_words` (migration 19), each conversation's words, and scans `message_search`,
the messages already lowercased, only when the words can't answer alone. All are refreshed here,
on read, for the conversations whose `updated_at` moved since they were computed (every reply's end
touches it), so the send path has nothing extra to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import duckdb

from chatcore.types import model_spellings

SortKey = Literal["updated_at", "created_at", "title", "messages", "tokens", "client"]
SORT_COLUMNS: dict[str, str] = {
    "updated_at": "c.updated_at",
    "created_at": "c.created_at",
    "title": "lower(c.title)",
    "messages": "s.messages",
    "tokens": "s.tokens",
    "client": "coalesce(s.client, '')",  # a tool's conversations together, the dashboard's first
}
DASHBOARD = ""  # the client of conversations typed into the dashboard (no proxy client)


@dataclass(frozen=True)
class Filters:
    """Conversations that used any of `models` and were active between the two dates (inclusive)."""

    models: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    clients: tuple[str, ...] = ()  # proxy clients; DASHBOARD for the dashboard's own


@dataclass(frozen=True)
class ConversationRow:
    id: str
    title: str
    models: list[str]
    messages: int
    tokens: int
    created_at: datetime
    updated_at: datetime
    client: str | None = None  # the tool that sent it through the proxies; None: the dashboard


# Words as search_words keeps them: the runs of letters, digits, marks and underscores of the
# folded text. Each run of a needle lies inside one of the text's wherever the needle occurs, so
# the conversations holding a word with each of the needle's runs are all that can match it, and
# exactly those that do when the needle is one run alone.
NOT_WORD = r"[^\pL\pN\pM_]+"
WORD = r"[\pL\pN\pM_]+"


# On text of ASCII alone the same words, by a pattern RE2 compiles in microseconds: the Unicode
# classes above cost about 5 ms to compile, once a statement, more than splitting a
# conversation's text (a reply's refresh reads one conversation).
ASCII_NOT_WORD = r"\W+"
ASCII_RUN = re.compile(r"[A-Za-z0-9_]+")  # a run of WORD in ASCII text


def words_insert(folded_rows: str, not_word: str = NOT_WORD) -> str:
    """SQL filling search_words from `folded_rows`, a query of message_id, conversation_id,
    active_at and folded (the lowercased text), as message_search holds them."""
    return f"""
        INSERT INTO search_words
        SELECT word, conversation_id, any_value(active_at), min(message_id), count(*)
        FROM (
            SELECT DISTINCT message_id, conversation_id, active_at,
                unnest(regexp_split_to_array(folded, '{not_word}')) AS word
            FROM ({folded_rows})
        )
        WHERE word <> ''
        GROUP BY conversation_id, word
        ORDER BY any_value(active_at), conversation_id  -- in order of activity, as message_search
        """


def stale_conversations(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        """
        SELECT c.id FROM conversations c
        LEFT JOIN conversation_summaries s ON s.conversation_id = c.id
        WHERE s.updated_at IS DISTINCT FROM c.updated_at
        """
    ).fetchall()
    return [conversation_id for (conversation_id,) in rows]


ROW_COLUMNS = "c.id, c.title, s.models, s.messages, s.tokens, c.created_at, c.updated_at, s.client"


FEW_STALE = 20  # up to this many, refresh one by one: indexed lookups beat full scans


def write_summaries(cur: duckdb.DuckDBPyConnection, conversation_ids: list[str]) -> None:
    """(Re)compute these conversations' summaries and folded text from their messages and runs."""
    if len(conversation_ids) <= FEW_STALE:
        for conversation_id in conversation_ids:
            write_one_summary(cur, conversation_id)
    else:
        write_many_summaries(cur, conversation_ids)


def forget_folded_text(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> None:
    """Delete one conversation's folded rows. They carry its summary's time: a filter on that
    constant lets DuckDB skip every block of the table written at other times."""
    row = cur.execute(
        "SELECT updated_at FROM conversation_summaries WHERE conversation_id = ?", [conversation_id]
    ).fetchone()
    if row is not None:
        for table in ("message_search", "search_words"):
            cur.execute(
                f"DELETE FROM {table} WHERE active_at = ? AND conversation_id = ?",
                [row[0], conversation_id],
            )


def folded_rows(chosen: str) -> str:
    """Each message of the conversations whose id matches `chosen`, lowercased, with the time
    of its conversation's last activity; every branch: search finds text on any of them."""
    return f"""
        SELECT m.id AS message_id, m.conversation_id, c.updated_at AS active_at,
            lower(m.content) AS folded
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.conversation_id {chosen}
        """


# message_search is appended in order of activity: the newest rows stay together at its end, for
# search's windows of the last week or two months.
IN_ORDER_OF_ACTIVITY = " ORDER BY active_at, message_id"


def write_one_summary(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> None:
    """One conversation's rows, as a reply's end leaves it stale: its folded text (which says
    how many messages it has, and whether they are ASCII alone) and words, then its summary
    from its runs, added up here (DuckDB plans a list aggregate slower than it reads them)."""
    forget_folded_text(cur, conversation_id)
    cur.execute("DELETE FROM conversation_summaries WHERE conversation_id = ?", [conversation_id])
    folded = cur.execute(
        f"INSERT INTO message_search {folded_rows('= ?')}{IN_ORDER_OF_ACTIVITY} "
        "RETURNING strlen(folded) = length(folded)",  # bytes = characters: ASCII alone
        [conversation_id],
    ).fetchall()
    not_word = ASCII_NOT_WORD if all(ascii for (ascii,) in folded) else NOT_WORD
    cur.execute(words_insert(folded_rows("= ?"), not_word), [conversation_id])
    runs = cur.execute(
        "SELECT model, coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0), client "
        "FROM runs WHERE conversation_id = ?",
        [conversation_id],
    ).fetchall()
    clients = [client for _, _, client in runs if client is not None]
    cur.execute(
        "INSERT INTO conversation_summaries SELECT id, updated_at, ?, ?, ?, ? "
        "FROM conversations WHERE id = ?",
        [
            len(folded),
            sum(tokens for _, tokens, _ in runs),
            sorted({model for model, _, _ in runs}),
            max(clients, default=None),
            conversation_id,
        ],
    )


def write_many_summaries(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    """The rows of many conversations at once (an import, the first build), in bulk."""
    chosen = "IN (SELECT unnest(?))"
    cur.execute(f"DELETE FROM message_search WHERE conversation_id {chosen}", [ids])
    cur.execute(f"DELETE FROM search_words WHERE conversation_id {chosen}", [ids])
    cur.execute(f"DELETE FROM conversation_summaries WHERE conversation_id {chosen}", [ids])
    cur.execute(f"INSERT INTO message_search {folded_rows(chosen)}{IN_ORDER_OF_ACTIVITY}", [ids])
    cur.execute(words_insert(folded_rows(chosen)), [ids])
    cur.execute(
        f"""
        INSERT INTO conversation_summaries
        WITH counted AS (
            SELECT conversation_id, count(*) AS messages  -- on every branch
            FROM messages WHERE conversation_id {chosen} GROUP BY conversation_id
        ),
        used AS (
            SELECT conversation_id, list(DISTINCT model ORDER BY model) AS models,
                sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) AS tokens,
                max(client) AS client
            FROM runs WHERE conversation_id {chosen} GROUP BY conversation_id
        )
        SELECT c.id, c.updated_at, coalesce(counted.messages, 0), coalesce(used.tokens, 0),
            coalesce(used.models, []), used.client
        FROM conversations c
        LEFT JOIN counted ON counted.conversation_id = c.id
        LEFT JOIN used ON used.conversation_id = c.id
        WHERE c.id {chosen}
        """,
        [ids, ids, ids],
    )


def search_since(
    cur: duckdb.DuckDBPyConnection,
    needle: str,
    filters: Filters,
    since: datetime | None,
    limit: int,
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
        [*window, needle, needle, *params, *window, limit],
    ).fetchall()


def needle_words(cur: duckdb.DuckDBPyConnection, needle: str) -> tuple[list[str], bool]:
    """The needle's runs as search_words splits text, and whether it is one run alone: for an
    ASCII needle in Python, the same runs without DuckDB compiling its Unicode classes (10 ms)."""
    if needle.isascii():
        folded = needle.lower()
        return ASCII_RUN.findall(folded), ASCII_RUN.fullmatch(folded) is not None
    row = cur.execute(
        "SELECT list_filter(regexp_split_to_array(lower(?), ?), lambda run: run <> ''),"
        " regexp_full_match(lower(?), ?)",
        [needle, NOT_WORD, needle, WORD],
    ).fetchone()
    return (list(row[0]), bool(row[1])) if row is not None else ([], False)


@dataclass(frozen=True)
class WordMatch:
    """A conversation whose words hold each of a needle's runs, or whose title holds it."""

    id: str
    title: str
    updated_at: datetime
    active_at: datetime | None  # its rows' time in message_search (None: only the title)
    first_message: int | None  # the first message holding a word with a run
    messages: int  # the messages holding each word, summed: exact when `words` is 1
    words: int  # how many of its words hold a run
    titled: bool  # the title holds the needle


def word_matches(
    cur: duckdb.DuckDBPyConnection, needle: str, runs: list[str], filters: Filters, most: int
) -> list[WordMatch] | None:
    """Every conversation matching `filters` whose words hold each of `runs` (the needle's) or
    whose title holds the needle, newest first; None when there are more than `most`."""
    where, params = filter_clause(filters)
    any_run = " OR ".join("contains(word, ?)" for _ in runs)
    every_run = " AND ".join("bool_or(contains(word, ?))" for _ in runs)
    rows = cur.execute(
        f"""
        WITH held AS (
            SELECT conversation_id, any_value(active_at) AS active_at,
                min(first_message) AS first_message, sum(messages) AS messages, count(*) AS words
            FROM search_words WHERE {any_run}
            GROUP BY conversation_id HAVING {every_run}
        )
        SELECT c.id, c.title, c.updated_at, h.active_at, h.first_message,
            coalesce(h.messages, 0), coalesce(h.words, 0), contains(lower(c.title), lower(?))
        FROM conversations c
        JOIN conversation_summaries s ON s.conversation_id = c.id
        LEFT JOIN held h ON h.conversation_id = c.id
        WHERE (h.conversation_id IS NOT NULL OR contains(lower(c.title), lower(?))) AND {where}
        ORDER BY c.updated_at DESC, c.id LIMIT ?
        """,
        [*runs, *runs, needle, needle, *params, most + 1],
    ).fetchall()
    return None if len(rows) > most else [WordMatch(*row) for row in rows]


def matching_messages(
    cur: duckdb.DuckDBPyConnection, needle: str, conversations: list[tuple[str, datetime]]
) -> dict[str, tuple[int, int]]:
    """The first message holding `needle` and how many do, in each of these conversations
    (id, active_at) that has one. The folded rows of each are found by their time, so DuckDB
    reads only the blocks written then, not all the text."""
    if not conversations:
        return {}
    one = (
        "SELECT conversation_id, message_id FROM message_search"
        " WHERE active_at = ? AND conversation_id = ? AND contains(folded, lower(?))"
    )
    params: list[object] = []
    for conversation_id, active_at in conversations:
        params += [active_at, conversation_id, needle]
    rows = cur.execute(
        f"""
        SELECT conversation_id, min(message_id), count(*)
        FROM ({" UNION ALL ".join([one] * len(conversations))}) GROUP BY conversation_id
        """,
        params,
    ).fetchall()
    return {conversation_id: (first, count) for conversation_id, first, count in rows}


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
        params.append(model_spellings(filters.models))
    if filters.clients:
        clauses.append("coalesce(s.client, '') IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(filters.clients))
    if filters.since is not None:  # active on or after that day
        clauses.append("c.updated_at >= ?")
        params.append(datetime.combine(filters.since, time.min).astimezone())
    if filters.until is not None:  # started on or before that day
        clauses.append("c.created_at < ?")
        params.append(datetime.combine(filters.until + timedelta(days=1), time.min).astimezone())
    return " AND ".join(clauses), params


def list_rows(
    cur: duckdb.DuckDBPyConnection,
    filters: Filters,
    sort: SortKey,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[ConversationRow], int]:
    """One page of conversations matching `filters`, and how many match in all (0 past the end)."""
    where, params = filter_clause(filters)
    order = f"{SORT_COLUMNS[sort]} {'DESC' if descending else 'ASC'}, c.id"
    rows = cur.execute(
        f"""
        SELECT {ROW_COLUMNS}, count(*) OVER () FROM conversations c
        JOIN conversation_summaries s ON s.conversation_id = c.id
        WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?
        """,
        [*params, limit, offset],
    ).fetchall()
    return [ConversationRow(*row[:-1]) for row in rows], rows[0][-1] if rows else 0


def conversation_row(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> ConversationRow | None:
    row = cur.execute(
        f"""
        SELECT {ROW_COLUMNS} FROM conversations c
        JOIN conversation_summaries s ON s.conversation_id = c.id WHERE c.id = ?
        """,
        [conversation_id],
    ).fetchone()
    return None if row is None else ConversationRow(*row)


def newest_activity(cur: duckdb.DuckDBPyConnection) -> datetime | None:
    row = cur.execute("SELECT max(updated_at) FROM conversations").fetchone()
    return None if row is None else row[0]


def used_models(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Every model any conversation used (from the summaries: no big scan)."""
    rows = cur.execute(
        "SELECT DISTINCT unnest(models) AS model FROM conversation_summaries ORDER BY model"
    ).fetchall()
    return [model for (model,) in rows]


def used_clients(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Every client with a conversation (DASHBOARD for the dashboard's own), from the summaries."""
    rows = cur.execute(
        "SELECT DISTINCT coalesce(client, '') AS client FROM conversation_summaries ORDER BY 1"
    ).fetchall()
    return [client for (client,) in rows]


def rename_conversation(cur: duckdb.DuckDBPyConnection, conversation_id: str, title: str) -> None:
    cur.execute("UPDATE conversations SET title = ? WHERE id = ?", [title, conversation_id])
