"""One root for every failure a user can understand: `str(error)` is the message to show.

Pages show any DashboardError the same way; the REST API maps the classes to HTTP statuses in one
table (chatcore/api/errors.py). This module imports nothing of the project.
"""

from __future__ import annotations


class DashboardError(Exception):
    """A failure with a message for the user."""


class InvalidInput(DashboardError, ValueError):
    """Bad input from a user or client: nothing was written."""


class PromptTooLong(InvalidInput):
    """The newest message (with the system prompt) alone does not fit the context window."""


class UnsupportedDocument(InvalidInput):
    """A file the knowledge base can't read: an unknown type, or a damaged file."""


class DocumentTooLarge(InvalidInput):
    """A file over the knowledge base's size limit."""


class NotFound(DashboardError):
    """What was asked for does not exist (a conversation, a round, a model)."""


class ModelNotFound(NotFound):
    def __init__(self, model: str, detail: str = "") -> None:
        self.model = model
        hint = f"ollama pull {model}"
        super().__init__(
            detail or f"Model '{model}' was not found. Install it with `{hint}` or pick another."
        )


class BackendUnavailable(DashboardError):
    """A model server can't be reached (or none is configured)."""


class BackendFailed(DashboardError):
    """The backend reported an error, before or during the stream."""


class Busy(DashboardError):
    """The backend has too much waiting already: try again in a moment."""


class DatabaseLocked(DashboardError):
    """Another process holds the DuckDB file; the message says which and what to do."""


class DatabaseUnreadable(DashboardError):
    """The DuckDB file exists but can't be read (damaged, truncated, not a database). Nothing
    was put in its place; the message says so, and a backup can be restored."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class StorageFailed(DashboardError):
    """Writing a file failed (disk full, no permission): nothing already stored was lost."""
