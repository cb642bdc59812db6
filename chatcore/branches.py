"""Conversations as trees: where a new message goes, switching branches, and forking.

The send path (chatcore/chat.py) asks `parent_for` where a message goes; the pages and the API
switch the open branch, fork a branch into a conversation of its own, and read the whole tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from chatcore.errors import InvalidInput, NotFound
from chatcore.storage import conversations as store
from chatcore.storage import trees
from chatcore.storage.db import Database
from chatcore.types import StoredMessage, as_stored_id

TOP = 0  # a parent_id that starts a new branch at the top (editing the first message)
FORK_SUFFIX = " (fork)"


def parent_for(
    cur: duckdb.DuckDBPyConnection, conversation_id: str, parent_id: int | None
) -> int | None:
    """The message a new one follows: `parent_id` when it is one of this conversation's, the open
    branch's last message when None, no parent for TOP. Raises InvalidInput for any other id."""
    if parent_id is None:
        branch = trees.open_branch(cur, conversation_id)
        return branch[-1] if branch else None
    if parent_id == TOP:
        return None
    if isinstance(parent_id, bool) or not isinstance(parent_id, int):
        raise InvalidInput("parent_id must be a message id.")
    if trees.message_in(cur, conversation_id, parent_id) is None:
        raise InvalidInput(f"Message {parent_id} is not a message of this conversation.")
    return parent_id


@dataclass(frozen=True)
class DialogueWindow:
    """A stretch of the open branch: what the Chat page draws of a conversation however long."""

    messages: list[StoredMessage]
    start: int  # the first message's place in the branch
    total: int  # messages in the whole branch

    @property
    def hidden_before(self) -> int:
        return self.start

    @property
    def hidden_after(self) -> int:
        return self.total - self.start - len(self.messages)

    @property
    def last(self) -> StoredMessage | None:
        """The branch's last message, when the window reaches it."""
        return self.messages[-1] if self.messages and not self.hidden_after else None

    def without(self, message_id: int) -> DialogueWindow:
        """The window less one of its messages (a reply that streams in its own place)."""
        kept = [m for m in self.messages if m.id != message_id]
        return DialogueWindow(kept, self.start, self.total - (len(self.messages) - len(kept)))


def window_bounds(
    total: int, size: int, index: int | None = None, before: int = 1
) -> tuple[int, int]:
    """Where a window of `size` messages starts and ends in a branch of `total`: the latest
    ones, or (with `index`, a message jumped to) from `before` above it on."""
    if index is None:
        return max(0, total - size), total
    start = max(0, index - before)
    return start, min(total, max(index + 1, start + size))


class BranchService:
    """Reading and moving about a conversation's tree."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_branch(self, conversation_id: str, through: int | None = None) -> list[StoredMessage]:
        """The open branch (or the one through `through`), each message with its siblings."""
        with self.db.cursor() as cur:
            return trees.branch_messages(cur, as_stored_id(conversation_id), through)

    def window(
        self, conversation_id: str, size: int, focus: int | None = None, before: int = 1
    ) -> DialogueWindow:
        """`size` messages of the open branch: the latest, or from `before` above `focus` (a
        message of the branch) on. Reads the tree's ids, then only the messages drawn."""
        with self.db.cursor() as cur:
            stored_id = as_stored_id(conversation_id)
            tree, branch = trees.open_branch_with_tree(cur, stored_id)
            index = branch.index(focus) if focus in branch else None
            start, end = window_bounds(len(branch), size, index, before)
            messages = trees.messages_of(cur, stored_id, tree, branch[start:end])
        return DialogueWindow(messages, start, len(branch))

    def tree(self, conversation_id: str) -> list[StoredMessage]:
        """Every message of every branch, oldest first, each with its parent_id."""
        with self.db.cursor() as cur:
            return trees.tree_messages(cur, as_stored_id(conversation_id))

    def switch(self, conversation_id: str, message_id: int) -> None:
        """Open the branch through `message_id`; the conversation remembers it."""
        conversation_id = as_stored_id(conversation_id)
        with self.db.transaction() as cur:
            if trees.message_in(cur, conversation_id, message_id) is None:
                raise NotFound(f"Message {message_id} is not in this conversation.")
            trees.set_open_message(cur, conversation_id, message_id)

    def fork(self, conversation_id: str, message_id: int, new_id: str) -> str:
        """A new conversation `new_id` holding the path from the first message to `message_id`."""
        conversation_id = as_stored_id(conversation_id)
        with self.db.transaction() as cur:
            summary = store.get_conversation(cur, conversation_id)
            if summary is None or trees.message_in(cur, conversation_id, message_id) is None:
                raise NotFound(f"Message {message_id} is not in this conversation.")
            if store.conversation_exists(cur, new_id):
                raise InvalidInput(f"Conversation '{new_id}' already exists.")
            path = trees.tree_of(cur, conversation_id).path_to(message_id)
            trees.copy_path(cur, path, new_id, forked_title(summary.title))
        return new_id


def forked_title(title: str) -> str:
    return title if title.endswith(FORK_SUFFIX) else title + FORK_SUFFIX
