"""The one table from the core's error classes to HTTP statuses, and the handlers that use it."""

from __future__ import annotations

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
    DocumentTooLarge,
    InvalidInput,
    NotFound,
    PromptTooLong,
    UnsupportedDocument,
)

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
    (BackendFailed, 502),
    (DashboardError, 500),
)


def status_for(error: DashboardError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


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


def add_error_handlers(api: FastAPI) -> None:
    """Every refusal says what was wrong; none of them stored anything."""

    @api.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(error.errors(), custom_encoder={Exception: str})
        return JSONResponse({"detail": readable(errors), "errors": errors}, status_code=422)

    @api.exception_handler(DashboardError)
    async def dashboard_error(_: Request, error: DashboardError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status_for(error))
