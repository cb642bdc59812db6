"""The storage layer on a real DuckDB file: migrations, locks, and surviving a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from chatcore.errors import DatabaseLocked
from chatcore.storage import conversations, migrations
from chatcore.storage.db import Database
from testkit.fake_ollama import FakeModel, FakeOllama

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_bring_a_new_file_to_the_latest_version(db_path: Path) -> None:
    db = Database(db_path)
    with db.cursor() as cur:
        assert migrations.current_version(cur) == migrations.MIGRATIONS[-1][0]
        tables = {
            r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert {"conversations", "messages", "runs", "schema_version"} <= tables
    db.close()
    Database(db_path).close()  # reopening applies nothing twice


def test_a_failing_migration_leaves_nothing_half_applied(db_path: Path, monkeypatch) -> None:
    broken = (99, "broken", ["CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL"])
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    with pytest.raises(duckdb.Error):
        Database(db_path)
    con = duckdb.connect(str(db_path))
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    con.close()
    assert "half" not in tables
    assert version == migrations.MIGRATIONS[-2][0]  # the last real migration, not the broken one


WRITER = textwrap.dedent(
    """
    import sys, time
    from chatcore.config import Settings
    from chatcore.params import GenerationParams
    from chatcore.services import open_services
    import chatcore.chat
    chatcore.chat.CHECKPOINT_SECONDS = 0.2
    services = open_services(Settings(ollama_host=sys.argv[1], db_path=sys.argv[2], port=0))
    stream = services.chat.send("killed-chat", "Tell me a long story", "slow", GenerationParams())
    for piece in stream:
        print(piece, flush=True)
    """
)


def test_reopen_after_the_writing_process_was_killed(db_path: Path) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    server = FakeOllama([FakeModel("slow:latest", reply=words, token_delay=0.05)]).start()
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, server.url, str(db_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        for _ in range(20):  # about a second of streaming: several checkpoints
            writer.stdout.readline()
        time.sleep(0.5)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    finally:
        server.stop()

    db = Database(db_path)  # the lock died with the process
    with db.cursor() as cur:
        user, reply = cur.execute(
            "SELECT content FROM messages WHERE conversation_id = 'killed-chat' ORDER BY id"
        ).fetchall()
        status, error = cur.execute("SELECT status, error FROM runs").fetchone()
    db.close()
    assert user[0] == "Tell me a long story"
    assert reply[0].startswith("w0 w1 w2")  # checkpointed text survived the kill
    assert status == "error" and "Interrupted" in error


HOLDER = textwrap.dedent(
    """
    import sys, time
    from chatcore.storage.db import Database
    db = Database(sys.argv[1])  # held open while we sleep
    print("open", flush=True)
    time.sleep(60)
    """
)


def test_a_file_locked_by_another_process_names_it(db_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(DatabaseLocked) as caught:
            Database(db_path)
        message = str(caught.value)
        assert str(db_path) in message
        assert f"process {holder.pid}" in message
        assert "CHAT_DB" in message
    finally:
        holder.kill()
        holder.wait()


def test_a_migration_missing_below_the_newest_is_still_applied(db_path: Path, monkeypatch) -> None:
    late = (0, "merged after a newer one ran", ["CREATE TABLE late_table (x INTEGER)"])
    Database(db_path).close()
    monkeypatch.setattr(migrations, "MIGRATIONS", [late, *migrations.MIGRATIONS])
    Database(db_path).close()
    con = duckdb.connect(str(db_path))
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert "late_table" in tables


def test_a_reply_without_a_run_still_reaches_the_model(db_path: Path) -> None:
    """A stored reply with no run of its own (written directly, as tests and tools do) is part
    of the dialogue the model sees: a missing run is not a failed one (SQL NULL)."""
    db = Database(db_path)
    try:
        with db.transaction() as cur:
            conversations.create_conversation(cur, "plain", "Plain")
            asked = conversations.add_message(cur, "plain", "user", "Hi", None)
            answered = conversations.add_message(cur, "plain", "assistant", "Hello.", asked)
            seen = conversations.context_messages(cur, "plain", [asked, answered])
        assert [m["role"] for m in seen] == ["user", "assistant"]
    finally:
        db.close()


def test_work_that_can_wait_waits_for_a_pause_in_the_turns_but_not_for_ever(
    db_path: Path,
) -> None:
    db = Database(db_path)
    gate = db.turns
    started = time.monotonic()
    gate.wait_for_a_pause(0.3, 30, lambda: False)  # no turn yet: at once
    assert time.monotonic() - started < 0.3
    gate.enter()
    try:
        started = time.monotonic()
        gate.wait_for_a_pause(0.1, 0.5, lambda: False)  # in flight throughout: the bound
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        gate.leave()
    gate.enter()  # a send that just began (and ended: its rows are in)
    gate.leave()
    started = time.monotonic()
    gate.wait_for_a_pause(0.3, 30, lambda: False)  # until nothing began for 0.3 s
    assert 0.2 <= time.monotonic() - started < 5
    gate.reply_ended()  # a tool's next request comes just after its answer: not in a pause
    started = time.monotonic()
    gate.wait_for_a_pause(0.3, 30, lambda: False)
    assert 0.2 <= time.monotonic() - started < 5
    db.close()


def test_work_in_the_background_lets_a_turn_in_flight_go_first(db_path: Path) -> None:
    db = Database(db_path)
    done = threading.Event()

    def summarise() -> None:
        with db.summaries_transaction(yielding=True) as cur:
            cur.execute("SELECT count(*) FROM runs").fetchone()
        done.set()

    db.turns.enter()  # a send between its user's message and its reply's rows
    worker = threading.Thread(target=summarise)
    worker.start()
    assert not done.wait(0.3)  # its statement waits for the turn
    db.turns.leave()
    assert done.wait(5)
    worker.join()
    db.close()


def test_stats_summaries_are_written_beside_a_send_in_its_transaction(db_path: Path) -> None:
    db = Database(db_path)
    with db.transaction() as cur:
        cur.execute("INSERT INTO run_summary_queue VALUES (1, NULL)")  # a run finished before
    summarised = threading.Event()

    def summarise() -> None:  # takes the queued run off, as summarise_queued does
        with db.summaries_transaction() as cur:
            cur.execute("DELETE FROM run_summary_queue WHERE run_id = 1")
        summarised.set()

    with db.transaction() as cur:  # a send's turn, and another run finishing, still open
        conversations.create_conversation(cur, "c1", "Hi")
        cur.execute("INSERT INTO run_summary_queue VALUES (2, NULL)")
        threading.Thread(target=summarise, daemon=True).start()
        assert summarised.wait(30), "the summaries waited for the send's transaction"
        conversations.add_message(cur, "c1", "user", "Hi")
    with db.cursor() as cur:  # both committed, neither lost the other's change
        assert cur.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        assert cur.execute("SELECT run_id FROM run_summary_queue").fetchall() == [(2,)]
    db.close()
