"""Backups of the DuckDB file while the app runs: consistent, pruned, restorable; a damaged file
at start is reported and met with the newest backup, never replaced by an empty database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from chatcore.backups import BackupService, list_backups, restore_unreadable
from chatcore.config import Settings
from chatcore.errors import DatabaseUnreadable
from chatcore.params import GenerationParams
from chatcore.services import Services, open_services
from chatcore.storage.db import Database
from testkit.fake_ollama import FakeOllama

PARAMS = GenerationParams()


def counts(path: Path) -> tuple[int, int, int]:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        return tuple(  # type: ignore[return-value]
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("conversations", "messages", "runs")
        )
    finally:
        connection.close()


def chat(services: Services, conversation: str | None = None, text: str = "Hi") -> str:
    return services.chat.send(conversation, text, "llama3.2", PARAMS).consume().conversation_id


def test_a_backup_taken_while_replies_are_stored_holds_whole_turns_only(
    services: Services,
) -> None:
    chat(services)
    stop = threading.Event()

    def keep_chatting() -> None:
        while not stop.is_set():
            chat(services)

    writers = [threading.Thread(target=keep_chatting) for _ in range(3)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(0.3)
        taken = [services.backups.create() for _ in range(3)]
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    for backup in taken:
        connection = duckdb.connect(str(backup.path), read_only=True)
        try:
            per_conversation = connection.execute(
                """SELECT c.id, count(m.id) FILTER (m.role = 'user'),
                          count(m.id) FILTER (m.role = 'assistant'), count(r.id)
                   FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
                   LEFT JOIN runs r ON r.message_id = m.id GROUP BY c.id"""
            ).fetchall()
        finally:
            connection.close()
        assert per_conversation and all(row[1:] == (1, 1, 1) for row in per_conversation)
    assert [b.name for b in services.backups.list()] == [b.name for b in reversed(taken)]


def test_only_the_newest_backups_are_kept(services: Services) -> None:
    service = BackupService(services.db, keep=2)
    made = [service.create().name for _ in range(4)]
    assert [b.name for b in service.list()] == [made[3], made[2]]


def test_restore_swaps_the_database_and_keeps_the_replaced_file(services: Services) -> None:
    first = chat(services, text="Before the backup")
    backup = services.backups.create()
    second = chat(services, text="After the backup")
    aside = services.backups.restore(backup.name)
    assert services.chat.exists(first) and not services.chat.exists(second)
    assert counts(aside)[0] == 2  # the replaced database, nothing lost
    third = chat(services, text="After the restore")  # the app goes on; ids do not collide
    assert services.chat.messages(third)[0].content == "After the restore"


def test_a_damaged_file_at_start_is_reported_and_the_newest_backup_restores_it(
    fake_ollama: FakeOllama, db_path: Path
) -> None:
    settings = Settings(ollama_host=fake_ollama.url, db_path=db_path, port=8501, embedded=False)
    services = open_services(settings)
    kept = chat(services, text="Keep me")
    services.backups.create()
    services.close()
    damaged = b"not a database at all, " * 4096
    db_path.write_bytes(damaged)
    db_path.with_name(db_path.name + ".wal").unlink(missing_ok=True)

    with pytest.raises(DatabaseUnreadable) as refused:
        open_services(settings)
    assert "can't be read" in str(refused.value) and str(db_path) in str(refused.value)
    assert "nothing was put in its place" in str(refused.value)
    assert db_path.read_bytes() == damaged  # never an empty database silently in its place

    newest = list_backups(db_path)[0]
    aside = restore_unreadable(db_path, newest.name)
    assert aside.read_bytes() == damaged
    reopened = open_services(settings)
    try:
        assert reopened.chat.exists(kept)
    finally:
        reopened.close()


def test_a_backup_that_can_not_be_read_is_refused_before_anything_changes(
    services: Services,
) -> None:
    chat(services)
    backup = services.backups.create()
    backup.path.write_bytes(b"garbage" * 1000)
    with pytest.raises(Exception, match="can't be read"):
        services.backups.restore(backup.name)
    assert services.chat.recent_titles()  # still the same database


def test_the_daily_backup_is_taken_when_due_and_not_again(services: Services) -> None:
    assert services.backups.due()
    services.backups.start_daily(check_seconds=0.05)
    deadline = time.monotonic() + 10
    while not services.backups.list() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    services.backups.stop_daily()
    assert len(services.backups.list()) == 1 and not services.backups.due()


def test_the_daily_backup_waits_out_the_start(services: Services) -> None:
    """The server's first minutes (first pages, the warm-up) don't share the disk and the cores
    with the day's backup; stopping meanwhile takes none."""
    services.backups.start_daily(check_seconds=0.05, first_wait=0.6)
    time.sleep(0.3)
    assert services.backups.list() == []
    deadline = time.monotonic() + 10
    while not services.backups.list() and time.monotonic() < deadline:
        time.sleep(0.02)
    services.backups.stop_daily()
    assert len(services.backups.list()) == 1

    waiting = BackupService(services.db, keep=3)
    waiting.start_daily(first_wait=60)
    started = time.monotonic()
    waiting.stop_daily()
    assert time.monotonic() - started < 5 and len(waiting.list()) == 1


DISK_FULL = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from chatcore.errors import StorageFailed
    from chatcore.backups import BackupService
    from chatcore.storage.db import Database

    db = Database(Path(sys.argv[1]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    try:
        BackupService(db, keep=3).create()
    except StorageFailed as error:
        print("refused:", error)
    db.close()
    """
)


def test_a_full_disk_while_backing_up_is_a_clear_error_and_loses_nothing(db_path: Path) -> None:
    db = Database(db_path)
    with db.transaction() as cur:  # a database larger than the pretend disk's free space
        cur.execute(
            "INSERT INTO conversations (id, title) SELECT 'c' || i, repeat('t', 500) "
            "FROM range(2000) r(i)"
        )
    db.close()
    before = counts(db_path)
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "refused: The backup could not be written" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
    assert counts(db_path) == before
    leftovers = list((db_path.parent / "backups").glob("*"))
    assert leftovers == []  # no partial backup left behind
