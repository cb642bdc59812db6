"""A conversation as a tree of messages: each message names its parent (migration 11).

Editing a message and sending again adds a sibling of it; regenerating adds a sibling reply. The
branch on screen is the path from the first message through the one the user last looked at
(`open_branches`), continued down by the newest answer at every step. A child is always stored
after its parent, so a branch in order of id is a branch in order of the dialogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import duckdb

from chatcore.storage.conversations import (
    RUN_OF,
    conversation_messages,
    create_conversation,
)
from chatcore.storage.runs import column_positions, run_reader, run_select
from chatcore.storage.transfer import reserve_ids
from chatcore.types import RunRecord, StoredMessage


@dataclass
class Tree:
    """The shape of one conversation: each message's parent, and each message's answers."""

    parents: dict[int, int | None] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=dict)  # oldest first

    @classmethod
    def of(cls, links: Iterable[tuple[int, int | None]]) -> Tree:
        """From (id, parent_id) pairs in order of id."""
        tree = cls()
        for message_id, parent_id in links:
            tree.parents[message_id] = parent_id
            tree.children.setdefault(parent_id, []).append(message_id)
        return tree

    def __contains__(self, message_id: object) -> bool:
        return message_id in self.parents

    def path_to(self, message_id: int) -> list[int]:
        """The first message down to `message_id`, both included."""
        path: list[int] = []
        current: int | None = message_id
        while current is not None:
            path.append(current)
            current = self.parents[current]
        return path[::-1]

    def branch(self, through: int | None) -> list[int]:
        """The branch through `through` (None or unknown: the newest first message), continued
        by the newest answer at each step."""
        if through is None or through not in self.parents:
            roots = self.children.get(None)
            if not roots:
                return []
            through = roots[-1]
        path = self.path_to(through)
        while answers := self.children.get(path[-1]):
            path.append(answers[-1])
        return path

    def siblings(self, message_id: int) -> tuple[int, ...]:
        return tuple(self.children[self.parents[message_id]])


def tree_of(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> Tree:
    rows = cur.execute(
        "SELECT id, parent_id FROM messages WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    ).fetchall()
    return Tree.of(rows)


def open_message(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> int | None:
    """The message the user last looked at (None: never chosen, the newest branch is open)."""
    row = cur.execute(
        "SELECT message_id FROM open_branches WHERE conversation_id = ?", [conversation_id]
    ).fetchone()
    return None if row is None else int(row[0])


def set_open_message(cur: duckdb.DuckDBPyConnection, conversation_id: str, message_id: int) -> None:
    # An update, and an insert only for a conversation's first: every reply moves its branch's
    # end, and DuckDB's INSERT OR REPLACE costs it 1.4 ms of CPU against the update's 0.5.
    moved = cur.execute(
        "UPDATE open_branches SET message_id = ? WHERE conversation_id = ? RETURNING 1",
        [message_id, conversation_id],
    ).fetchall()
    if not moved:
        cur.execute(
            "INSERT INTO open_branches (conversation_id, message_id) VALUES (?, ?)",
            [conversation_id, message_id],
        )


def existing_open_branch(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> tuple[bool, list[int]]:
    """Whether the conversation exists, and its open branch: one query, on a send's path to its
    first token (each DuckDB statement costs about half a millisecond; the tree is sorted here,
    cheaper than in SQL)."""
    rows = cur.execute(
        """
        SELECT 0, id, parent_id FROM messages WHERE conversation_id = $c
        UNION ALL SELECT 1, NULL, message_id FROM open_branches WHERE conversation_id = $c
        UNION ALL SELECT 2, NULL, NULL FROM conversations WHERE id = $c
        """,
        {"c": conversation_id},
    ).fetchall()
    links = sorted((row[1], row[2]) for row in rows if row[0] == 0)
    chosen = next((row[2] for row in rows if row[0] == 1), None)
    exists = any(row[0] == 2 for row in rows)
    return exists, Tree.of(links).branch(chosen)


def open_branch(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> list[int]:
    """The ids of the open branch, first message first."""
    return open_branch_with_tree(cur, conversation_id)[1]


def open_branch_with_tree(
    cur: duckdb.DuckDBPyConnection, conversation_id: str
) -> tuple[Tree, list[int]]:
    """The conversation's tree and the ids of its open branch: what a window of the branch is
    cut from without reading every message's text."""
    tree = tree_of(cur, conversation_id)
    return tree, tree.branch(open_message(cur, conversation_id))


def messages_of(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, tree: Tree, ids: list[int]
) -> list[StoredMessage]:
    """The messages `ids` of the conversation, oldest first, each with its siblings."""
    messages = conversation_messages(cur, conversation_id, ids)
    return [replace(m, siblings=tree.siblings(m.id)) for m in messages]


def branch_messages(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, through: int | None = None
) -> list[StoredMessage]:
    """The branch through `through` (None: the open one), each message with its siblings."""
    tree = tree_of(cur, conversation_id)
    if through is None:
        through = open_message(cur, conversation_id)
    return messages_of(cur, conversation_id, tree, tree.branch(through))


def newest_run_on(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> RunRecord | None:
    """The run of the newest reply among messages `ids` that has one."""
    result = cur.execute(
        f"""
        SELECT {run_select("r")}
        FROM messages m JOIN runs r ON r.message_id = {RUN_OF.format(m="m")}
        WHERE m.id IN (SELECT unnest($ids)) ORDER BY m.id DESC LIMIT 1
        """,
        {"ids": ids},
    )
    row = result.fetchone()
    return None if row is None else run_reader(column_positions(result))(row)


def tree_messages(cur: duckdb.DuckDBPyConnection, conversation_id: str) -> list[StoredMessage]:
    """Every message of every branch, oldest first, each with its parent and siblings."""
    tree = tree_of(cur, conversation_id)
    messages = conversation_messages(cur, conversation_id)
    return [replace(m, siblings=tree.siblings(m.id)) for m in messages]


def copy_path(
    cur: duckdb.DuckDBPyConnection,
    path: list[int],
    conversation_id: str,
    title: str,
) -> None:
    """A new conversation holding copies of the messages of `path` (a branch, first message
    first) as one chain. A copied reply keeps pointing at its run through `forked_from`: the
    run is not copied, so Stats counts it once."""
    create_conversation(cur, conversation_id, title)
    if not path:
        return
    new_ids = reserve_ids(cur, "messages_id_seq", len(path))
    new_parents: list[int | None] = [None, *new_ids[:-1]]
    cur.execute(
        """
        INSERT INTO messages (id, conversation_id, role, content, created_at, thinking,
            parent_id, forked_from)
        SELECT copy.new_id, $conversation, m.role, m.content, m.created_at, m.thinking,
            copy.new_parent, coalesce(m.forked_from, m.id)
        FROM messages m JOIN (
            SELECT unnest($old) AS old_id, unnest($new) AS new_id, unnest($parents) AS new_parent
        ) copy ON copy.old_id = m.id
        """,
        {"conversation": conversation_id, "old": path, "new": new_ids, "parents": new_parents},
    )
    cur.execute(
        """
        INSERT INTO message_images (message_id, position, sha256)
        SELECT copy.new_id, mi.position, mi.sha256
        FROM message_images mi JOIN (SELECT unnest($old) AS old_id, unnest($new) AS new_id) copy
            ON copy.old_id = mi.message_id
        """,
        {"old": path, "new": new_ids},
    )


def message_in(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, message_id: int
) -> tuple[str, int | None] | None:
    """A message's role and parent when it belongs to the conversation, else None."""
    row = cur.execute(
        "SELECT role, parent_id FROM messages WHERE id = ? AND conversation_id = ?",
        [message_id, conversation_id],
    ).fetchone()
    return None if row is None else (row[0], row[1])
