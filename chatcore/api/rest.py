"""The seed's REST API (chat, conversations, history, models) over the same chatcore the pages use.

`create_api()` builds a FastAPI app that the dashboard's process mounts at /api (DuckDB lets one
process open the file, so the API lives beside the pages and shares their Services object).
ChatService is synchronous: its work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Literal, TypeVar, get_type_hints

import anyio
from fastapi import FastAPI, Query
from fastapi.encoders import jsonable_encoder
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.types import Receive, Scope, Send

from chatcore.api.errors import add_error_handlers
from chatcore.api.security import AccessGuard
from chatcore.chat import ChatService, Reply, ReplyStream
from chatcore.errors import BackendUnavailable, NotFound
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.types import ConversationSummary, Metrics, ModelInfo, RunStatus, StoredMessage

SEED_DEFAULT_MODEL = "llama2"  # the seed's ModelParams default
API_THREADS = 40  # chats in flight at once; more wait their turn instead of starving Streamlit
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json")
T = TypeVar("T")
ServicesProvider = Callable[[], Services]
InThread = Callable[[Callable[[], Any]], Awaitable[Any]]  # runs blocking work off the event loop


# --- request and answer bodies ---


class ModelParams(GenerationParams):
    """The seed's model_params: the model and the sidebar's generation parameters."""

    model: str = Field(SEED_DEFAULT_MODEL, min_length=1, description="An installed model's name")

    def generation(self) -> GenerationParams:
        return GenerationParams(**self.model_dump(exclude={"model"}))


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    conversation_id: str | None = Field(
        None, description="An existing conversation, or a new id to create; omitted: a new one"
    )
    model_params: ModelParams = Field(default_factory=ModelParams)
    stream: bool = Field(False, description="Stream the reply as NDJSON lines")


def metrics_schema() -> type[BaseModel]:
    """The API's metrics: every field of Metrics (so the API can't drift from what is stored),
    plus the speed and the time to the first token."""
    hints = get_type_hints(Metrics)
    return create_model(
        "MetricsOut",
        tokens_per_second=(float | None, ...),
        ttft_ms=(float | None, Field(description="Time to the first token, by the app's clock")),
        **{f.name: (hints[f.name], ...) for f in fields(Metrics)},
    )


MetricsOut = metrics_schema()


class ChatReply(BaseModel):
    reply: str
    conversation_id: str
    message_id: int
    model: str
    backend: str
    host: str
    status: Literal["complete", "stopped", "error"]
    error: str | None
    metrics: MetricsOut


class ConversationOut(BaseModel):
    id: str
    title: str
    models: list[str]
    message_count: int
    created_at: datetime
    updated_at: datetime


class HistoryMessage(BaseModel):
    id: int
    role: str
    content: str
    created_at: datetime
    model: str | None = None
    backend: str | None = None
    host: str | None = None
    status: str | None = None
    error: str | None = None
    options: dict[str, Any] | None = None
    metrics: MetricsOut | None = None


class History(BaseModel):
    conversation: ConversationOut
    messages: list[HistoryMessage]


class ModelOut(BaseModel):
    name: str
    backend: str
    host: str
    where: str
    family: str | None
    parameter_size: str | None
    quantization: str | None
    size_bytes: int | None
    available: bool


class Models(BaseModel):
    models: list[ModelOut]
    unreachable: dict[str, str] = Field(description="Backends that did not answer: host -> why")


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        401: "CHAT_API_TOKEN is set and the request did not present it",
        403: "A foreign web origin, or a host other than this machine",
        404: "Unknown model or conversation",
        422: "Invalid input: nothing was stored",
        503: "The backend or the database is not available: nothing was stored",
    }.items()
}
CHAT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    502: {
        "model": ChatReply,
        "description": "The model failed while answering: the turn is stored with status "
        "error and whatever text arrived",
    },
}


# --- shaping chatcore's records into answers ---


def metrics_out(metrics: Metrics, ttft_ms: float | None) -> BaseModel:
    return MetricsOut(
        **metrics.as_dict(), tokens_per_second=metrics.tokens_per_second, ttft_ms=ttft_ms
    )


def chat_reply(reply: Reply) -> ChatReply:
    return ChatReply(
        reply=reply.text,
        conversation_id=reply.conversation_id,
        message_id=reply.message_id,
        model=reply.model,
        backend=reply.backend,
        host=reply.host,
        status=reply.status,  # type: ignore[arg-type]  # finished: never "streaming" here
        error=reply.error,
        metrics=metrics_out(reply.metrics, reply.ttft_ms),
    )


def conversation_out(summary: ConversationSummary) -> ConversationOut:
    return ConversationOut(
        id=summary.id,
        title=summary.title,
        models=summary.models,
        message_count=summary.message_count,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
    )


def history_message(message: StoredMessage) -> HistoryMessage:
    out = HistoryMessage(
        id=message.id, role=message.role, content=message.content, created_at=message.created_at
    )
    if (run := message.run) is not None:
        out = out.model_copy(
            update={
                "model": run.model,
                "backend": run.backend,
                "host": run.host,
                "status": run.status,
                "error": run.error,
                "options": run.options,
                "metrics": metrics_out(run.metrics, run.ttft_ms),
            }
        )
    return out


def model_out(info: ModelInfo) -> ModelOut:
    return ModelOut(
        name=info.name,
        backend=info.backend,
        host=info.host,
        where=info.where,
        family=info.family,
        parameter_size=info.parameter_size,
        quantization=info.quantization,
        size_bytes=info.size_bytes,
        available=info.available,
    )


def ndjson(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n"


# --- streaming ---


class ReplyStreamResponse(StreamingResponse):
    """A reply as NDJSON: `{"content": ..., "done": false}` per piece, then the stored outcome
    with `"done": true`. However the response ends (done, client gone, cancelled before it began),
    the reply stream is closed, so a reply cut short is stored as stopped."""

    media_type = "application/x-ndjson"

    def __init__(self, stream: ReplyStream, in_thread: InThread) -> None:
        self.stream = stream
        self.in_thread = in_thread
        super().__init__(self.lines())

    async def lines(self) -> AsyncIterator[bytes]:
        pieces = iter(self.stream)
        while (piece := await self.in_thread(lambda: next(pieces, None))) is not None:
            yield ndjson({"content": piece, "done": False})
        yield ndjson({**jsonable_encoder(chat_reply(self.stream.reply)), "done": True})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # runs even when the request was cancelled
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                await self.in_thread(self.stream.close)


# --- the app ---


def create_api(
    services: ServicesProvider,
    *,
    origins: Sequence[str],
    token: str | None = None,
) -> FastAPI:
    """The API over `services` (called per request: the process's one Services object).

    `origins` are the only web origins allowed (the dashboard's own); with `token`, every request
    but the docs must carry `Authorization: Bearer <token>`.
    """
    api = FastAPI(
        title="Ollama Chat Dashboard API",
        summary="Chat with local models and read the conversations the dashboard shows.",
        version="1.0",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    threads = anyio.CapacityLimiter(API_THREADS)

    async def in_thread(work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work, limiter=threads)

    def chat_service() -> ChatService:
        return services().chat

    api.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    api.add_middleware(AccessGuard, origins=origins, token=token, open_paths=DOCS_PATHS)
    add_error_handlers(api)

    @api.post("/chat", response_model=ChatReply, responses=CHAT_ERRORS)
    async def chat(request: ChatRequest) -> Any:
        """Send a message and get the reply. An unknown conversation_id creates that conversation.

        With `"stream": true` the answer is NDJSON: `{"content": ..., "done": false}` per piece,
        then the whole reply as without streaming, with `"done": true`. A client that hangs up
        mid-stream leaves the reply stored as stopped.
        """
        params = request.model_params

        def send() -> ReplyStream:
            return chat_service().send(
                request.conversation_id, request.message, params.model, params.generation()
            )

        if request.stream:
            return ReplyStreamResponse(await in_thread(send), in_thread)
        reply = await in_thread(lambda: send().consume())
        return JSONResponse(
            jsonable_encoder(chat_reply(reply)),
            status_code=502 if reply.status == RunStatus.ERROR else 200,
        )

    @api.get("/conversations", response_model=list[ConversationOut], responses=ERRORS)
    def conversations(
        limit: int = Query(100, ge=1, le=10_000, description="The newest this many"),
    ) -> list[ConversationOut]:
        """Conversations, most recently active first."""
        return [conversation_out(c) for c in chat_service().recent_conversations(limit)]

    @api.get("/history/{conversation_id}", response_model=History, responses=ERRORS)
    def history(conversation_id: str) -> History:
        """A conversation's messages in order, each reply with its model, status and metrics."""
        service = chat_service()
        summary = service.conversation(conversation_id)
        if summary is None:
            raise NotFound(f"Conversation '{conversation_id}' was not found.")
        messages = service.messages(conversation_id)
        return History(
            conversation=conversation_out(summary),
            messages=[history_message(m) for m in messages],
        )

    @api.get("/models", response_model=Models, responses=ERRORS)
    def models() -> Models:
        """The models of every backend, with where each runs."""
        listing = services().registry.list_models()
        if not listing.models and listing.unreachable:
            raise BackendUnavailable(" ".join(listing.unreachable.values()))
        return Models(
            models=[model_out(m) for m in listing.models], unreachable=listing.unreachable
        )

    from chatcore.api.suites import suite_routes  # here: it builds on this module's schemas

    api.include_router(suite_routes(services))
    return api
