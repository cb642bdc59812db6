"""The one table from the core's error classes to HTTP statuses, and the handlers that use it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from chatcore.errors import (
    BackendFailed,
    BackendUnavailable,
    Busy,
    DashboardError,
    DatabaseLocked,
    DatabaseUnreadable,
    DocumentTooLarge,
    InvalidInput,
    NotFound,
    PromptTooLong,
    StorageFailed,
    UnsupportedDocument,
)
from chatcore.logs import current_request_id, note

# The most specific class first: the first one an error is an instance of gives its status.
STATUS_BY_ERROR: tuple[tuple[type[DashboardError], int], ...] = (
    (PromptTooLong, 413),
    (DocumentTooLarge, 413),
    (UnsupportedDocument, 415),
    (InvalidInput, 422),
    (NotFound, 404),
    (BackendUnavailable, 503),
    (Busy, 503),
    (DatabaseLocked, 503),
    (DatabaseUnreadable, 503),
    (StorageFailed, 507),
    (BackendFailed, 502),
    (DashboardError, 500),
)


RETRY_AFTER_SECONDS = 5  # a busy model: when a client may try again


def status_for(error: DashboardError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


def headers_for(error: DashboardError) -> dict[str, str]:
    """Busy says when to come back; nothing else needs a header."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, Busy) else {}


def error_body(detail: str, **more: Any) -> dict[str, Any]:
    """Every error body: what was wrong, and the id of its line in the log."""
    note(error=detail)
    return {"detail": detail, "request_id": current_request_id(), **more}


def error_response(error: DashboardError) -> JSONResponse:
    note(error_kind=type(error).__name__)
    return JSONResponse(
        error_body(str(error)), status_code=status_for(error), headers=headers_for(error)
    )


def readable(errors: Sequence[Any]) -> str:
    """Pydantic's errors in one line: `model_params.temperature: Input should be ... (got 1.5)`."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        got = (
            f" (got {error['input']!r})" if "input" in error and error["type"] != "missing" else ""
        )
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


def json_safe(value: Any) -> Any:
    """Python's json reads NaN and Infinity, JSON can't carry them back: echo them as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    return value


UNEXPECTED = "Unexpected error in the dashboard; the log has the details under this request id."


def unexpected_error_response() -> JSONResponse:
    """Anything no handler knew: a 500 with the request id, the traceback only in the log."""
    return JSONResponse(error_body(UNEXPECTED), status_code=500)


def add_error_handlers(api: FastAPI) -> None:
    """Every refusal says what was wrong; none of them stored anything."""

    @api.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = json_safe(jsonable_encoder(error.errors(), custom_encoder={Exception: str}))
        return JSONResponse(error_body(readable(errors), errors=errors), status_code=422)

    @api.exception_handler(DashboardError)
    async def dashboard_error(_: Request, error: DashboardError) -> JSONResponse:
        return error_response(error)
