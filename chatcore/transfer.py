"""Export conversations as JSON (lossless, versioned) or Markdown (for reading); import JSON.

Both directions stream, so a history of any size moves in flat memory: an export is a generator
of byte chunks read from DuckDB in batches (chatcore/transfer_export.py); an import reads a file
twice with ijson, first checking all of it, then applying it in one transaction: it all lands
or none of it (chatcore/transfer_import.py). The file's shape, version by version, is
chatcore/transfer_format.py.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Literal

from chatcore.errors import NotFound
from chatcore.storage.db import Database
from chatcore.transfer_export import export_chunks, markdown_chunks
from chatcore.transfer_format import (
    FORMAT,
    READABLE_VERSIONS,
    VERSION,
    ImportRefused,
    ImportReport,
)
from chatcore.transfer_import import import_file

__all__ = [
    "FORMAT",
    "READABLE_VERSIONS",
    "VERSION",
    "ImportRefused",
    "ImportReport",
    "Kind",
    "TransferService",
    "export_json",
    "export_markdown",
    "import_json",
]

SPOOL_IN_MEMORY = 8 * 2**20  # an uploaded body beyond this goes to a temporary file
TICKET_SECONDS = 600  # how long a page's download link stays valid

Kind = Literal["json", "markdown"]


def export_json(
    db: Database,
    conversation_ids: list[str] | None = None,
    exported_at: datetime | None = None,
    version: int = VERSION,
) -> bytes:
    """The whole JSON export in memory: for small exports and tests; big ones use the stream."""
    return b"".join(export_chunks(db, conversation_ids, exported_at, version))


def export_markdown(db: Database, conversation_ids: list[str] | None = None) -> str:
    return b"".join(markdown_chunks(db, conversation_ids)).decode()


def import_json(db: Database, data: bytes | IO[bytes]) -> ImportReport:
    """Import an export given as bytes or as a seekable binary file (read twice, never whole)."""
    return import_file(db, io.BytesIO(data) if isinstance(data, bytes | bytearray) else data)


def spooled(chunks: Iterable[bytes]) -> IO[bytes]:
    """A request body gathered into a seekable file: in memory while small, on disk beyond."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    for chunk in chunks:
        file.write(chunk)
    file.seek(0)
    return file


@dataclass(frozen=True)
class Ticket:
    kind: Kind
    conversation_ids: list[str] | None
    expires: float


class TransferService:
    """Export and import over the process's database, for the pages and the REST API."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._tickets: dict[str, Ticket] = {}
        self._lock = threading.Lock()

    def export_json(self, conversation_ids: list[str] | None = None) -> bytes:
        return export_json(self._db, conversation_ids)

    def export_markdown(self, conversation_ids: list[str] | None = None) -> str:
        return export_markdown(self._db, conversation_ids)

    def export_stream(
        self,
        conversation_ids: list[str] | None = None,
        kind: Kind = "json",
        version: int = VERSION,
    ) -> Iterator[bytes]:
        """The export as byte chunks, read from the database as they are sent."""
        if kind == "markdown":
            return markdown_chunks(self._db, conversation_ids)
        return export_chunks(self._db, conversation_ids, version=version)

    def import_json(self, data: bytes | IO[bytes]) -> ImportReport:
        return import_json(self._db, data)

    def import_chunks(self, chunks: Iterable[bytes]) -> ImportReport:
        """Import a body that arrives in chunks (the REST API's), spooled to a temporary file."""
        with spooled(chunks) as file:
            return import_json(self._db, file)

    # A page can't stream a download through Streamlit (it holds a download in memory), so it
    # links to the REST API's export instead; a ticket lets the browser fetch it without the
    # API token, for a while, and only that export.

    def download_ticket(self, conversation_ids: list[str] | None, kind: Kind = "json") -> str:
        ticket = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._tickets = {k: t for k, t in self._tickets.items() if t.expires > now}
            self._tickets[ticket] = Ticket(kind, conversation_ids, now + TICKET_SECONDS)
        return ticket

    def redeem(self, ticket: str) -> Ticket:
        with self._lock:
            found = self._tickets.get(ticket)
        if found is None or found.expires <= time.monotonic():
            raise NotFound("This download link has expired; export again from the History page.")
        return found
