"""Migration 19: a database searched before search_words gets them from its folded text, the
same rows the History refresh keeps."""

from __future__ import annotations

from pathlib import Path

from chatcore.storage import migrations
from chatcore.storage.db import Database
from chatcore.storage.history import write_many_summaries

MESSAGES = [
    ("c1", "user", "Tell me about Quokkas, please!"),
    ("c1", "assistant", "A quokka is small; quokkas smile. 日本語も"),
    ("c2", "user", "x_y and 50% of e-mail"),
]


def words(db: Database) -> list[tuple[object, ...]]:
    with db.cursor() as cur:
        return cur.execute("SELECT * FROM search_words ORDER BY ALL").fetchall()


def test_migration_19_fills_the_words_from_the_folded_text(db_path: Path) -> None:
    db = Database(db_path)
    with db.transaction() as cur:
        cur.execute("INSERT INTO conversations (id, title) VALUES ('c1', 'One'), ('c2', 'Two')")
        for conversation_id, role, content in MESSAGES:
            cur.execute(
                "INSERT INTO messages (conversation_id, role, content) VALUES (?, ?, ?)",
                [conversation_id, role, content],
            )
        write_many_summaries(cur, ["c1", "c2"])
    kept = words(db)
    assert ("quokkas", "c1") in [row[:2] for row in kept]
    assert [row[4] for row in kept if row[0] == "quokka"] == [1]  # messages holding it
    assert {"x_y", "e", "mail", "50", "日本語も"} <= {row[0] for row in kept}
    with db.transaction() as cur:  # as it was before migration 19
        cur.execute("DROP TABLE search_words")
        cur.execute("DELETE FROM schema_version WHERE version = 19")
    db.close()
    db = Database(db_path)  # applies migration 19
    try:
        with db.cursor() as cur:
            assert 19 in migrations.applied_versions(cur)
        assert words(db) == kept
    finally:
        db.close()
