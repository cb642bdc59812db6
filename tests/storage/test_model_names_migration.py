"""Migration 5: rows stored before one name per model ("phi3" beside "phi3:latest") are merged."""

from __future__ import annotations

from pathlib import Path

import duckdb

from chatcore.storage import migrations
from chatcore.storage.db import Database

OLD_RUNS = [
    ("c1", "phi3", "ollama"),
    ("c1", "phi3:latest", "ollama"),
    ("c2", "library/phi3", "ollama"),
    ("c2", "localhost:5000/me/phi3", "ollama"),
    ("c3", "qwen3:4b", "ollama"),
    ("c3", "gemma3-270m (embedded)", "embedded"),
]


def database_before_migration_5(path: Path) -> None:
    con = duckdb.connect(str(path))
    applied = migrations.applied_versions(con)
    for number, _title, statements in migrations.MIGRATIONS:
        if number < 5 and number not in applied:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
    for index, (conversation_id, model, backend) in enumerate(OLD_RUNS):
        con.execute(
            "INSERT INTO runs (conversation_id, message_id, model, backend, host, options, status)"
            " VALUES (?, ?, ?, ?, 'h', '{}', 'complete')",
            [conversation_id, index, model, backend],
        )
    con.execute(
        "INSERT INTO conversation_summaries VALUES"
        " ('c1', now(), 2, 0, ['phi3', 'phi3:latest']),"
        " ('c3', now(), 2, 0, ['gemma3-270m (embedded)', 'qwen3:4b'])"
    )
    con.close()


def test_migration_5_gives_each_model_one_name(db_path: Path) -> None:
    database_before_migration_5(db_path)
    db = Database(db_path)  # applies migration 5
    with db.cursor() as cur:
        assert 5 in migrations.applied_versions(cur)
        models = [m for (m,) in cur.execute("SELECT model FROM runs ORDER BY id").fetchall()]
        summaries = dict(
            cur.execute("SELECT conversation_id, models FROM conversation_summaries").fetchall()
        )
    db.close()
    assert models == [
        "phi3:latest",
        "phi3:latest",
        "library/phi3:latest",
        "localhost:5000/me/phi3:latest",
        "qwen3:4b",
        "gemma3-270m (embedded)",
    ]
    assert summaries == {
        "c1": ["phi3:latest"],
        "c3": ["gemma3-270m (embedded)", "qwen3:4b"],
    }
