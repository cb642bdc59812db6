"""One log line per API request, with the request id that its answer carries.

Every response gets an `X-Request-ID` header, every error body a `request_id`, and the log a
`request` line under the same id: method, path, status, duration and what went wrong. Headers and
query strings are never logged (a token could travel in either).
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatcore.api.errors import unexpected_error_response
from chatcore.logs import event, log, noted, request_scope

REQUEST_ID_HEADER = "X-Request-ID"


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # until a response starts: an exception that escapes is a 500
        started_response = False
        started = time.perf_counter()

        with request_scope() as request_id:

            async def send_with_id(message: Message) -> None:
                nonlocal status
                nonlocal started_response
                if message["type"] == "http.response.start":
                    status, started_response = message["status"], True
                    MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
                await send(message)

            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unexpected error", extra={"fields": {"path": scope["path"]}})
                if started_response:
                    raise  # too late for an error body: the server closes the connection
                await unexpected_error_response()(scope, receive, send_with_id)
            finally:
                event(
                    "request",
                    logging.INFO if status < 500 else logging.ERROR,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    **noted(),
                )
