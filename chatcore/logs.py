"""The dashboard's log: one JSON line per API request and per run, to stderr and a rotated file.

Each line carries the request id a user sees next to an error (on the page and in the API's
error body), so the line can be found from the screen. Message and reply text are logged only at
DEBUG; the API token is never logged: it is blanked out of every line before it is written.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGGER_NAME = "chatcore"
LOG_FILE_NAME = "dashboard.log"
LOG_FILE_BYTES = 10 * 2**20  # rotated at 10 MB, five old files kept: at most 60 MB on disk
LOG_FILE_BACKUPS = 5
REDACTED = "[redacted]"

log = logging.getLogger(LOGGER_NAME)
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# What the work of a request adds to its line (conversation, model, error...): a dict made by
# request_scope, so threads and tasks started inside fill the same one.
_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)
_configured: dict[str, logging.Handler] = {}
_configure_lock = threading.Lock()


# --- request ids ---


def new_request_id() -> str:
    """Short enough to read off a screen and type into grep, random enough never to repeat."""
    return secrets.token_hex(6)


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Everything logged inside carries this request id (a new one when none is given)."""
    request_id = request_id or new_request_id()
    token = _request_id.set(request_id)
    fields_token = _request_fields.set({})
    try:
        yield request_id
    finally:
        _request_fields.reset(fields_token)
        _request_id.reset(token)


def note(**fields: Any) -> None:
    """Add fields to the current request's line (nothing outside a request_scope)."""
    if (current := _request_fields.get()) is not None:
        current.update(fields)


def noted() -> dict[str, Any]:
    return dict(_request_fields.get() or {})


def begin_request() -> str:
    """Start a new request id for the rest of this thread's work (a page's run)."""
    request_id = new_request_id()
    _request_id.set(request_id)
    return request_id


# --- writing lines ---


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: `{"time", "level", "event", "request_id", **fields}`."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})


class JsonLines(logging.Formatter):
    """A record as one line of JSON; every secret's value is blanked wherever it appears."""

    def __init__(self, secrets_to_hide: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets_to_hide if s)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        text = json.dumps(line, ensure_ascii=False, default=str)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def level_from(name: str | None) -> int:
    """LOG_LEVEL by name (debug, info, warning, error); INFO when unset or unknown."""
    level = logging.getLevelName((name or "INFO").strip().upper())
    return level if isinstance(level, int) else logging.INFO


def log_path(data_dir: Path) -> Path:
    return data_dir / LOG_FILE_NAME


def configure_logging(data_dir: Path, level: str | None, hide: tuple[str, ...] = ()) -> Path:
    """Send the dashboard's lines to stderr and to `dashboard.log` in the data directory.

    Safe to call again (tests open many databases): each file gets one handler, stderr one.
    """
    path = log_path(data_dir)
    formatter = JsonLines(hide)
    with _configure_lock:
        log.setLevel(level_from(level))
        log.propagate = False  # Streamlit's and uvicorn's own handlers would print it twice
        if "stderr" not in _configured:
            _configured["stderr"] = add_handler(logging.StreamHandler(sys.stderr))
        if str(path) not in _configured:
            data_dir.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
            )
            _configured[str(path)] = add_handler(handler)
        for handler in _configured.values():
            handler.setFormatter(formatter)
    return path


def add_handler(handler: logging.Handler) -> logging.Handler:
    log.addHandler(handler)
    return handler


def stop_logging_to(data_dir: Path) -> None:
    """Close the file handler of a data directory (a test's temporary one, a closed database)."""
    with _configure_lock:
        handler = _configured.pop(str(log_path(data_dir)), None)
    if handler is not None:
        log.removeHandler(handler)
        handler.close()
