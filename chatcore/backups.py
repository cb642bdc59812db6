"""Backups of the chat database: on demand, once a day on their own, the newest N kept.

Backups live in `backups/` beside the database file, one DuckDB file each, named by the time they
were taken (`chat-20250101-120000-000000.duckdb`), so a listing sorts newest first by name.
A restore swaps the open database for a copy of one, keeping the replaced file beside it.
A database that can't be read at start is met with the newest backup (`restore_unreadable`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from chatcore.errors import InvalidInput, NotFound, StorageFailed
from chatcore.logs import event
from chatcore.storage import backups as files
from chatcore.storage.db import Database, replace_file

BACKUP_DIR_NAME = "backups"
DAILY_SECONDS = 24 * 3600
CHECK_SECONDS = 3600.0  # how often the daily backup looks whether one is due
# The server's first minutes are its busiest (the first pages, the background warm-up): the day's
# backup, seconds of copying on a big history, waits this long after start.
START_WAIT_SECONDS = 120.0
NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}-\d{6}-\d{6})\.duckdb$")


@dataclass(frozen=True)
class Backup:
    name: str
    path: Path
    taken_at: datetime
    size_bytes: int


def backup_dir(db_path: Path) -> Path:
    return db_path.parent / BACKUP_DIR_NAME


def list_backups(db_path: Path) -> list[Backup]:
    """The backups of this database file, newest first."""
    directory = backup_dir(db_path)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"{db_path.stem}-*.duckdb"):
        if (match := NAME.match(path.name)) and match["stem"] == db_path.stem:
            taken = datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S-%f")
            found.append(Backup(path.name, path, taken, path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def find_backup(db_path: Path, name: str) -> Backup:
    for backup in list_backups(db_path):
        if backup.name == name:
            return backup
    raise NotFound(f"There is no backup named '{name}'.")


def readable_backup(backup: Backup) -> int:
    """The backup's conversation count; InvalidInput when the file can't be read."""
    try:
        return files.conversation_count(backup.path)
    except duckdb.Error as error:
        raise InvalidInput(
            f"The backup {backup.name} can't be read ({str(error).splitlines()[0]})."
        ) from error


def restore_unreadable(db_path: Path, name: str) -> Path:
    """Put a backup in place of a database that could not be opened (no Database is open).

    The unreadable file is kept beside it (returned), for whoever wants to look at it.
    """
    backup = find_backup(db_path, name)
    readable_backup(backup)
    aside = replace_file(db_path, backup.path)
    event("backup.restored", logging.WARNING, backup=name, replaced=str(aside))
    return aside


class BackupService:
    def __init__(self, db: Database, keep: int) -> None:
        self.db = db
        self.keep = max(1, keep)
        self._taking = threading.Lock()  # one backup at a time
        self._stop = threading.Event()
        self._daily: threading.Thread | None = None

    def list(self) -> list[Backup]:
        return list_backups(self.db.path)

    def create(self) -> Backup:
        """A consistent copy of the database as it is now; the oldest beyond `keep` go."""
        with self._taking:
            directory = backup_dir(self.db.path)
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageFailed(f"The backup folder can't be made: {error}") from error
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            target = directory / f"{self.db.path.stem}-{stamp}.duckdb"
            started = time.perf_counter()
            with self.db.cursor() as cur:
                files.copy_database(cur, target, hold=self.db.turns.quiet())
            backup = find_backup(self.db.path, target.name)
            event(
                "backup.created",
                backup=backup.name,
                size_bytes=backup.size_bytes,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            self._prune()
            return backup

    def restore(self, name: str) -> Path:
        """Swap the open database for this backup; the replaced file stays beside it."""
        backup = find_backup(self.db.path, name)
        readable_backup(backup)
        aside = self.db.replace_with(backup.path)
        event("backup.restored", logging.WARNING, backup=name, replaced=str(aside))
        return aside

    def _prune(self) -> None:
        for old in self.list()[self.keep :]:
            old.path.unlink(missing_ok=True)

    # --- once a day ---

    def due(self) -> bool:
        backups = self.list()
        return not backups or (datetime.now() - backups[0].taken_at).total_seconds() >= (
            DAILY_SECONDS
        )

    def start_daily(self, check_seconds: float = CHECK_SECONDS, first_wait: float = 0.0) -> None:
        """After `first_wait` seconds, take a backup if the newest is a day old (or there is
        none), then keep checking."""
        if self._daily is None:
            self._daily = threading.Thread(
                target=self._run_daily,
                args=(check_seconds, first_wait),
                name="daily-backup",
                daemon=True,
            )
            self._daily.start()

    def stop_daily(self) -> None:
        self._stop.set()
        if self._daily is not None:
            self._daily.join(timeout=30)
            self._daily = None

    def _run_daily(self, check_seconds: float, first_wait: float) -> None:
        if self._stop.wait(first_wait):
            return
        while not self._stop.is_set():
            try:
                if self.due():
                    self.create()
            except Exception as error:  # a failed daily backup must not end the app
                event("backup.failed", logging.ERROR, error=str(error))
            self._stop.wait(check_seconds)
