"""The REST twins of the History page's export and import: GET /export streams a JSON (or
Markdown) export as it is read from the database, POST /import takes an export as the request
body, gathered into a temporary file chunk by chunk (never whole in memory), checked whole and
applied in one transaction. GET /export/download/{ticket} is the link the History page gives
the browser (see TransferService.download_ticket). Registered by `create_api` (rest.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from chatcore.services import Services
from chatcore.transfer import SPOOL_IN_MEMORY, VERSION, ImportReport

DOWNLOAD_PREFIX = "/export/download/"  # open without the API token: the ticket is the key
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "The download link expired"},
    422: {"description": "The file can't be imported (the detail says why): nothing was stored"},
}
ONLY_THESE = "Only these conversations (repeat the parameter); all when absent"
MEDIA = {"json": "application/json", "markdown": "text/markdown; charset=utf-8"}
SUFFIX = {"json": "json", "markdown": "md"}


class ImportOut(BaseModel):
    imported: list[str]
    skipped: list[str]  # already here: left as they were
    messages: int
    runs: int
    presets: list[str]  # added; one whose name was taken is kept as it was


def import_out(report: ImportReport) -> ImportOut:
    return ImportOut(
        imported=report.imported,
        skipped=report.skipped,
        messages=report.messages,
        runs=report.runs,
        presets=report.presets,
    )


def download(chunks: Iterator[bytes], kind: str, whole: bool) -> StreamingResponse:
    """The chunks sent as they come (Starlette pulls a sync iterator in a worker thread)."""
    stem = "all-conversations" if whole else "conversations"
    return StreamingResponse(
        chunks,
        media_type=MEDIA[kind],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{SUFFIX[kind]}"'},
    )


def transfer_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["export and import"], responses=ERRORS)

    @router.get("/export", response_class=StreamingResponse)
    def export(
        format: Literal["json", "markdown"] = "json",
        conversation_id: Annotated[list[str] | None, Query(description=ONLY_THESE)] = None,
        version: Annotated[int, Query(description="The JSON format version: 4 or 5")] = VERSION,
    ) -> StreamingResponse:
        """Every conversation (or those named), streamed: the JSON export (format version 5,
        with presets and the evaluation when whole) or the Markdown of each open branch."""
        transfer = services().transfer
        if format == "markdown":
            return download(transfer.export_stream(conversation_id, "markdown"), format, False)
        chunks = transfer.export_stream(conversation_id, "json", version)
        return download(chunks, format, conversation_id is None)

    @router.get(DOWNLOAD_PREFIX + "{ticket}", response_class=StreamingResponse)
    def export_by_ticket(ticket: str) -> StreamingResponse:
        """The export a History page asked for (its link stays valid for ten minutes)."""
        transfer = services().transfer
        found = transfer.redeem(ticket)
        chunks = transfer.export_stream(found.conversation_ids, found.kind)
        return download(chunks, found.kind, found.conversation_ids is None)

    @router.post("/import", response_model=ImportOut)
    async def import_export(request: Request) -> ImportOut:
        """Import a JSON export (any version, any size) sent as the request body. Conversations
        already here are skipped and reported; a bad file is a 422 and stores nothing."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as file:
            async for chunk in request.stream():
                file.write(chunk)
            file.seek(0)
            report = await anyio.to_thread.run_sync(services().transfer.import_json, file)
        return import_out(report)

    return router
