"""The History page's questions: list, search, open, rename and delete conversations.

The list reads a per-conversation summary (visible messages, tokens, models) instead of
aggregating a million messages per request, and search scans the visible messages already
lowercased (chatcore/storage/history.py). Both are refreshed here, on read, for the conversations
whose `updated_at` moved since they were computed (every reply's end touches it), so the send path
has nothing extra to do.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from chatcore.errors import InvalidInput
from chatcore.storage import conversations as store
from chatcore.storage import history as queries
from chatcore.storage import trees
from chatcore.storage.db import Database
from chatcore.storage.history import (
    DASHBOARD,
    SORT_COLUMNS,
    ConversationRow,
    Filters,
    SortKey,
)
from chatcore.types import StoredMessage, as_stored_id

__all__ = [
    "DASHBOARD",
    "SORT_COLUMNS",
    "ConversationRow",
    "Filters",
    "HistoryService",
    "SortKey",
]

PAGE_SIZE = 50
SEARCH_LIMIT = 50
SNIPPET_CHARS = 160
# how far back a search looks first, widening while it finds fewer than SEARCH_LIMIT; None: all
SEARCH_WINDOWS: list[timedelta | None] = [timedelta(days=7), timedelta(days=60), None]
TITLE_MAX_CHARS = 200
NO_FILTERS = Filters()


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
    # the first matching message (None: only the title matched): its branch opens, and Chat
    # can jump to it
    message_id: int | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    total: int  # matching conversations; `hits` holds at most the first SEARCH_LIMIT
    complete: bool  # False: only recent conversations were searched; `total` is a lower bound


@dataclass(frozen=True)
class OpenConversation:
    summary: ConversationRow
    messages: list[StoredMessage] = field(default_factory=list)


class HistoryService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._refresh_lock = threading.Lock()  # two sessions must not refresh the same rows

    # --- reading ---

    def list_conversations(
        self,
        filters: Filters = NO_FILTERS,
        sort: SortKey = "updated_at",
        descending: bool = True,
        page: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> ListPage:
        self.refresh_summaries()
        with self.db.cursor() as cur:
            rows, total = queries.list_rows(
                cur, filters, sort, descending, page_size, max(page, 0) * page_size
            )
        if not rows and page > 0:  # past the end: the count still says how many there are
            total = self.list_conversations(filters, sort, descending, 0, 1).total
        return ListPage(rows, total)

    def search(
        self, text: str, filters: Filters = NO_FILTERS, by_words: bool = True
    ) -> SearchResult:
        """The most recently active conversations whose title or visible messages contain
        `text`, ignoring case.

        Recent weeks are searched first, in the folded text (kept in order of activity, so a
        window skips the rest): a common word fills SEARCH_LIMIT there. Otherwise the
        conversations' words (search_words) name the ones that can match: a needle that is one
        word (or part of one) is answered from them alone, any other from the folded text of
        those few. Too many of those: the scan widens, skipping windows unlikely to fill. Either
        way the answer is the scan's: `total` and `complete` count the matches within the window
        it stops at. `by_words=False`: the scan alone, as before search_words (the benchmark's and
        the tests' reference).
        """
        needle = text.strip()
        if not needle:
            return SearchResult([], 0, complete=True)
        self.refresh_summaries()
        with self.db.cursor() as cur:
            newest = queries.newest_activity(cur)
            if newest is None:
                return SearchResult([], 0, complete=True)
            matches, total, complete = scanned_matches(cur, needle, filters, newest, 0, 0)
            if not complete and total < SEARCH_LIMIT:
                found = matches_by_words(cur, needle, filters) if by_words else None
                if found is not None:
                    matches, total, complete = within_windows(found, newest)
                else:
                    widened = next_window(0, total)
                    matches, total, complete = scanned_matches(
                        cur, needle, filters, newest, widened
                    )
            texts = queries.message_texts(cur, [m.first for m in matches if m.first is not None])
        hits = [m.hit(snippet(texts.get(m.first, m.title), needle)) for m in matches]
        return SearchResult(hits, total, complete)

    def open(self, conversation_id: str, through: int | None = None) -> OpenConversation | None:
        """The conversation's row and its open branch (or the branch through message `through`,
        a search hit's), each reply with its run."""
        self.refresh_summaries()
        conversation_id = as_stored_id(conversation_id)
        with self.db.cursor() as cur:
            row = queries.conversation_row(cur, conversation_id)
            if row is None:
                return None
            return OpenConversation(row, trees.branch_messages(cur, conversation_id, through))

    def client_names(self) -> list[str]:
        """The clients whose conversations History holds; DASHBOARD ("") is the dashboard's."""
        self.refresh_summaries()
        with self.db.cursor() as cur:
            return queries.used_clients(cur)

    def model_names(self) -> list[str]:
        """Every model any conversation used, for the filter."""
        self.refresh_summaries()
        with self.db.cursor() as cur:
            return queries.used_models(cur)

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
            queries.rename_conversation(cur, conversation_id, title)
        return title

    def delete(self, conversation_ids: list[str]) -> int:
        """Delete conversations with everything stored for them, in one transaction."""
        if not conversation_ids:
            return 0
        with self.db.transaction(summaries=True) as cur:  # Stats forgets their runs
            return store.delete_conversations(cur, conversation_ids)

    # --- the summary ---

    def refresh_summaries(self) -> int:
        """Recompute the summary of every conversation changed since its summary was made.

        Cheap when nothing changed (a join of two small tables); returns how many were redone.
        """
        with self.db.cursor() as cur:  # the usual case, without taking the write lock
            if not queries.stale_conversations(cur):
                return 0
        with self._refresh_lock, self.db.transaction() as cur:
            stale = queries.stale_conversations(cur)
            if stale:
                queries.write_summaries(cur, stale)
        return len(stale)


@dataclass(frozen=True)
class Match:
    """A matching conversation: its first message holding the needle (None: only its title)
    and how many do."""

    id: str
    title: str
    updated_at: datetime
    first: int | None
    count: int

    def hit(self, around: str) -> SearchHit:
        return SearchHit(self.id, self.title, self.updated_at, around, self.count, self.first)


# Up to this many conversations whose words hold a one-word needle are read from the words; more
# (a common word) and the windowed scan, which then stops at the first week or two months, is
# cheaper. A needle of several words (or with punctuation) is looked for in the folded text of
# each conversation holding its words, at a few milliseconds each: up to this many.
WORDS_MOST = 5_000
CHECKED_MOST = 40
RUNS_LOOKED_UP = 4


def matches_by_words(
    cur: duckdb.DuckDBPyConnection, needle: str, filters: Filters
) -> list[Match] | None:
    """Every conversation matching `needle` and `filters`, newest first, found through the
    conversations' words; None when the words can't answer cheaply (see WORDS_MOST)."""
    runs, one_word = queries.needle_words(cur, needle)
    if not runs:  # punctuation alone: no word to look up
        return None
    # Any of the runs name conversations that can match (the text then checks them): the
    # longest few, the likeliest to be rare, keep a long needle's query short.
    runs = sorted(set(runs), key=len, reverse=True)[:RUNS_LOOKED_UP]
    held = queries.word_matches(
        cur, needle, runs, filters, WORDS_MOST if one_word else CHECKED_MOST
    )
    if held is None:
        return None
    # A one-word needle is in a conversation iff one of its words holds it; the first message is
    # the words' first, and their count is exact when one word holds it. The rest is read from
    # the text: every candidate for a longer needle, the shown ones holding several words.
    if one_word:
        unsure = [w for w in held[:SEARCH_LIMIT] if w.words > 1]
    else:
        unsure = [w for w in held if w.words > 0]
    checked = queries.matching_messages(
        cur, needle, [(w.id, w.active_at) for w in unsure if w.active_at is not None]
    )
    unsure_ids = {w.id for w in unsure}
    matches = []
    for word in held:
        if word.id not in unsure_ids:
            matches.append(
                Match(word.id, word.title, word.updated_at, word.first_message, word.messages)
            )
        elif word.id in checked:
            first, count = checked[word.id]
            matches.append(Match(word.id, word.title, word.updated_at, first, count))
        elif word.titled:  # its words hold the runs, its text not the needle: the title does
            matches.append(Match(word.id, word.title, word.updated_at, None, 0))
    return matches


def within_windows(matches: list[Match], newest: datetime) -> tuple[list[Match], int, bool]:
    """The hits, total and completeness the windowed scan gives for these matches (all of
    them, newest first): it stops at the first window holding SEARCH_LIMIT."""
    index = 0
    while True:
        window = SEARCH_WINDOWS[index]
        since = None if window is None else newest - window
        found = len(matches) if since is None else sum(m.updated_at >= since for m in matches)
        if since is None or found >= SEARCH_LIMIT:
            return matches[:SEARCH_LIMIT], found, since is None
        index = next_window(index, found)


def scanned_matches(
    cur: duckdb.DuckDBPyConnection,
    needle: str,
    filters: Filters,
    newest: datetime,
    index: int,
    last: int | None = None,
) -> tuple[list[Match], int, bool]:
    """The matches in the folded text, from SEARCH_WINDOWS[index] on, widening while fewer than
    SEARCH_LIMIT match, up to SEARCH_WINDOWS[last] (all of them when None): the hits, the total
    in the last window searched and whether that was the whole history."""
    while True:
        window = SEARCH_WINDOWS[index]
        since = None if window is None else newest - window
        rows = queries.search_since(cur, needle, filters, since, SEARCH_LIMIT)
        if since is None or len(rows) >= SEARCH_LIMIT or index == last:
            break
        index = next_window(index, len(rows))
    matches = [Match(*row[:5]) for row in rows]
    return matches, rows[0][-1] if rows else 0, since is None


def next_window(searched: int, found: int) -> int:
    """The window to search after SEARCH_WINDOWS[searched] found `found` (< SEARCH_LIMIT).

    Matches grow about as a window's length: a wider window likely to find fewer than
    SEARCH_LIMIT as well is skipped for the whole history (a rare word then costs two scans,
    not three)."""
    last = len(SEARCH_WINDOWS) - 1
    span = SEARCH_WINDOWS[searched]
    for index in range(searched + 1, last):
        wider = SEARCH_WINDOWS[index]
        if span is not None and wider is not None and found * (wider / span) >= SEARCH_LIMIT:
            return index
    return last


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
