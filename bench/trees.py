"""Opening the open branch of a conversation that is a tree, on the generated history of
1,000,000 messages (bench/history_data.py, migrated to trees by migration 11 on the copy).

The tree: 1,000 messages, a main line of 500 and 100 side branches of 5 messages each, hanging
from points along it; the open branch is one of the side branches. It is printed beside opening
the history's long single-line conversation of 1,000 messages, and the time migration 11 took on
the copy (once, on the first start after upgrading).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

from bench.history import timed_ms
from bench.history_data import LONG_CONVERSATION, Shape, generated_database
from bench.support import report
from chatcore.history import HistoryService
from chatcore.storage import conversations as store
from chatcore.storage import trees
from chatcore.storage.db import Database
from chatcore.storage.migrations import MIGRATIONS

MIGRATIONS_11 = next(statements for number, _, statements in MIGRATIONS if number == 11)

TREE = "bench-tree"
MAIN_LINE = 500
BRANCHES = 100
BRANCH_MESSAGES = 5
TARGET_MS = 50.0


def build_tree(db: Database, seed: int = 15) -> int:
    """The tree conversation; returns the message its open branch goes through."""
    rng = random.Random(seed)
    with db.transaction() as cur:
        store.create_conversation(cur, TREE, "A long conversation with many branches")
        line: list[int] = []
        parent = None
        for index in range(MAIN_LINE):
            role = "user" if index % 2 == 0 else "assistant"
            parent = store.add_message(cur, TREE, role, f"main {index} " * 20, parent)
            line.append(parent)
        for branch in range(BRANCHES):
            fork_at = rng.randrange(0, MAIN_LINE, 2)  # an edit of a user message: its sibling
            parent = line[fork_at - 1] if fork_at else None
            for index in range(BRANCH_MESSAGES):
                role = "user" if index % 2 == 0 else "assistant"
                parent = store.add_message(cur, TREE, role, f"branch {branch} {index}", parent)
        trees.set_open_message(cur, TREE, line[MAIN_LINE // 2])  # mid main line: 500 on screen
    return line[MAIN_LINE // 2]


def measure(path: Path) -> list[tuple[str, str]]:
    db = Database(path)
    migrated_ms = backfill_ms(db)
    history = HistoryService(db)
    try:
        build_tree(db)
        history.refresh_summaries()
        branch = history.open(TREE)
        assert branch is not None
        with db.cursor() as cur:
            total = cur.execute(
                "SELECT count(*) FROM messages WHERE conversation_id = ?", [TREE]
            ).fetchone()[0]
        with_siblings = sum(len(m.siblings) > 1 for m in branch.messages)
        line = history.open(LONG_CONVERSATION)
        assert line is not None
        tree_ms = timed_ms(lambda: history.open(TREE))
        line_ms = timed_ms(lambda: history.open(LONG_CONVERSATION))
        tree_only_ms = timed_ms(lambda: db_branch(db))
    finally:
        db.close()
    return [
        (
            f"open branch of a {total:,}-message tree, {BRANCHES} branches "
            f"({len(branch.messages)} shown, {with_siblings} with siblings; <= {TARGET_MS:.0f} ms)",
            f"{tree_ms:.1f} ms",
        ),
        ("  of which the branch's messages and runs alone", f"{tree_only_ms:.1f} ms"),
        (
            f"open the {len(line.messages):,}-message single-line conversation",
            f"{line_ms:.1f} ms",
        ),
        ("ratio tree / single line", f"{tree_ms / line_ms:.2f}"),
        ("migration 11 on 1,000,000 messages (once)", f"{migrated_ms:.0f} ms"),
    ]


def backfill_ms(db: Database) -> float:
    """Migration 11's backfill of every message's parent, timed on the copy's 1M messages."""
    (backfill,) = [s for s in MIGRATIONS_11 if s.lstrip().startswith("UPDATE messages")]
    with db.transaction() as cur:
        expected = cur.execute("SELECT sum(hash(parent_id)) FROM messages").fetchone()
        cur.execute("UPDATE messages SET parent_id = NULL")
        started = time.perf_counter()
        cur.execute(backfill)
        took = (time.perf_counter() - started) * 1000
        # the generator's parents are the migration's
        assert cur.execute("SELECT sum(hash(parent_id)) FROM messages").fetchone() == expected
    return took


def db_branch(db: Database) -> object:
    with db.cursor() as cur:
        return trees.branch_messages(cur, TREE)


def main() -> None:
    shape = Shape()
    source = generated_database(shape)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "history.duckdb"
        shutil.copyfile(source, copy)
        rows = measure(copy)
    report(f"trees: a 1,000-message tree in {shape.messages:,} messages (median)", rows)


if __name__ == "__main__":
    main()
