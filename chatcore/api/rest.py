"""The seed's REST API (chat, conversations, history, models) over the same chatcore the pages use.

`create_api()` builds a FastAPI app that the dashboard's process mounts at /api (DuckDB lets one
process open the file, so the API lives beside the pages and shares their Services object).
ChatService is synchronous: its work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import FastAPI, File, Form, Query, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from chatcore.api.compare import compare_routes
from chatcore.api.errors import add_error_handlers, error_response
from chatcore.api.hosts import host_routes
from chatcore.api.model_actions import model_routes
from chatcore.api.presets import preset_routes
from chatcore.api.pulls import pull_routes
from chatcore.api.request_log import RequestLog
from chatcore.api.schemas import MetricsOut, metrics_out
from chatcore.api.search import search_routes
from chatcore.api.security import AccessGuard
from chatcore.api.stats import stats_routes
from chatcore.api.streaming import PieceBatches, framed
from chatcore.api.suites import suite_routes
from chatcore.api.transfer import DOWNLOAD_PREFIX, transfer_routes
from chatcore.backups import Backup
from chatcore.chat import ChatService, Reply, ReplyStream, valid_conversation_id
from chatcore.documents import MAX_DOCUMENT_BYTES
from chatcore.errors import BackendUnavailable, Busy, NotFound
from chatcore.images import decoded_images
from chatcore.knowledge import DEFAULT_COLLECTION, KnowledgeService
from chatcore.logs import note
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.types import (
    Citation,
    ConversationSummary,
    Document,
    ModelInfo,
    RunStatus,
    StoredMessage,
    Thinking,
)

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
    collections: tuple[str, ...] | None = Field(  # type: ignore[assignment]
        None,
        description="Knowledge-base collections whose passages go into the prompt; omitted: the "
        "ones the conversation's newest reply used (none for a new one), [] for none",
    )

    def generation(self, remembered: Sequence[str] = ()) -> GenerationParams:
        """The parameters to send with; omitted collections are the conversation's own."""
        fields = self.model_dump(exclude={"model"})
        if self.collections is None:
            fields["collections"] = tuple(remembered)
        return GenerationParams(**fields)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    conversation_id: str | None = Field(
        None, description="An existing conversation, or a new id to create; omitted: a new one"
    )
    model_params: ModelParams = Field(default_factory=ModelParams)
    stream: bool = Field(False, description="Stream the reply as NDJSON lines")
    parent_id: int | None = Field(
        None,
        description="The message to answer after, on any branch (a new branch when it is not "
        "the last); 0: a new first message; omitted: after the open branch's last message",
    )
    images: list[str] = Field(
        default_factory=list,
        description="Images for a vision model, each a base64 string (PNG, JPEG, WebP or GIF)",
    )


class CitationOut(BaseModel):
    number: int = Field(description="The [number] the passage had in the prompt")
    document_id: int
    document: str = Field(description="The document's name")
    collection: str
    text: str = Field(description="The passage as it went into the prompt")
    score: float = Field(description="Its reciprocal-rank fusion score")
    similarity: float | None = Field(description="Cosine similarity to the question, if found")
    heading: str | None
    page: int | None


class ChatReply(BaseModel):
    reply: str
    thinking: str = Field("", description="The model's reasoning, apart from the reply")
    conversation_id: str
    message_id: int
    model: str
    backend: str
    host: str
    status: Literal["complete", "stopped", "error"]
    error: str | None
    metrics: MetricsOut
    request_id: str | None = Field(None, description="This turn's id in the dashboard's log")
    citations: list[CitationOut] = Field(
        default_factory=list, description="Passages of model_params.collections it was given"
    )


class DocumentOut(BaseModel):
    id: int
    collection: str
    name: str
    media_type: str
    size_bytes: int
    status: Literal["indexing", "ready", "error"]
    error: str | None
    chunk_count: int
    embedding_model: str | None
    created_at: datetime
    indexed_at: datetime | None


class ConversationOut(BaseModel):
    id: str
    title: str
    models: list[str]
    message_count: int
    created_at: datetime
    updated_at: datetime


class HistoryMessage(BaseModel):
    id: int
    parent_id: int | None = Field(None, description="The message it follows; null: a first one")
    role: str
    content: str
    created_at: datetime
    thinking: str = ""
    images: list[str] = Field(default_factory=list, description="Attached images, base64")
    model: str | None = None
    backend: str | None = None
    host: str | None = None
    status: str | None = None
    error: str | None = None
    options: dict[str, Any] | None = None
    metrics: MetricsOut | None = None
    request_id: str | None = Field(None, description="The reply's id in the dashboard's log")
    citations: list[CitationOut] = Field(
        default_factory=list, description="A reply's knowledge-base passages, as it was given them"
    )


class BranchChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(description="A message of the conversation, on any branch")


class ForkRequest(BranchChoice):
    conversation_id: str | None = Field(
        None, description="The new conversation's id; omitted: a new one"
    )


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


class BackupOut(BaseModel):
    name: str
    taken_at: datetime
    size_bytes: int


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: Literal[True] = Field(
        description="Must be true: the open database is replaced (and kept beside it)"
    )


class RestoreOut(BaseModel):
    restored: str
    replaced_file_kept_at: str


class ErrorOut(BaseModel):
    detail: str
    request_id: str | None = Field(description="The id of this request's line in the log")
    errors: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        401: "CHAT_API_TOKEN is set and the request did not present it",
        403: "A foreign web origin, or a host other than this machine",
        404: "Unknown model or conversation",
        422: "Invalid input: nothing was stored",
        503: "The backend or the database is not available, or the embedded model is busy "
        "(with Retry-After)",
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


def chat_reply(reply: Reply) -> ChatReply:
    return ChatReply(
        reply=reply.text,
        thinking=reply.thinking,
        conversation_id=reply.conversation_id,
        message_id=reply.message_id,
        model=reply.model,
        backend=reply.backend,
        host=reply.host,
        status=reply.status,  # type: ignore[arg-type]  # finished: never "streaming" here
        error=reply.error,
        metrics=metrics_out(reply.metrics, reply.ttft_ms),
        request_id=reply.request_id,
        citations=[citation_out(c) for c in reply.citations],
    )


def citation_out(c: Citation) -> CitationOut:
    return CitationOut(
        number=c.number,
        document_id=c.document_id,
        document=c.document_name,
        collection=c.collection,
        text=c.text,
        score=c.score,
        similarity=c.similarity,
        heading=c.heading,
        page=c.page,
    )


def document_out(d: Document) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        collection=d.collection,
        name=d.name,
        media_type=d.media_type,
        size_bytes=d.size_bytes,
        status=d.status.value,  # type: ignore[arg-type]
        error=d.error,
        chunk_count=d.chunk_count,
        embedding_model=d.embedding_model,
        created_at=d.created_at,
        indexed_at=d.indexed_at,
    )


def backup_out(backup: Backup) -> BackupOut:
    return BackupOut(name=backup.name, taken_at=backup.taken_at, size_bytes=backup.size_bytes)


def conversation_out(summary: ConversationSummary) -> ConversationOut:
    return ConversationOut(
        id=summary.id,
        title=summary.title,
        models=summary.models,
        message_count=summary.message_count,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
    )


def history_message(
    message: StoredMessage, images: dict[str, bytes], cited: dict[int, list[Citation]]
) -> HistoryMessage:
    out = HistoryMessage(
        id=message.id,
        parent_id=message.parent_id,
        role=message.role,
        content=message.content,
        created_at=message.created_at,
        thinking=message.thinking,
        images=[base64.b64encode(images[h]).decode() for h in message.images if h in images],
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
                "request_id": run.request_id,
                "citations": [citation_out(c) for c in cited.get(run.id, [])],
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


# A piece's line as ndjson() writes it, from templates (chatcore/api/streaming.py's `framed`).
ANSWER_LINE, THINKING_LINE, LINE_END = '{"content": ', '{"thinking": ', ', "done": false}\n'


def piece_lines(batch: list[str]) -> bytes:
    """A line per run of one kind in a batch (its pieces joined); an empty piece (queued at a
    busy model) sends nothing."""
    return framed(joined_by_kind(batch), "", ANSWER_LINE, THINKING_LINE, LINE_END)


def joined_by_kind(batch: list[str]) -> list[str]:
    """The pieces that arrived together, joined where they are of one kind: reasoning, then
    the answer, as a model sends them (so usually one piece, at most two)."""
    if not any(piece.__class__ is Thinking for piece in batch):
        return ["".join(batch)]
    runs: list[list[str]] = []
    for piece in batch:
        if runs and (runs[-1][0].__class__ is Thinking) == (piece.__class__ is Thinking):
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return [
        Thinking("".join(run)) if run[0].__class__ is Thinking else "".join(run) for run in runs
    ]


class ReplyStreamResponse(StreamingResponse):
    """A reply as NDJSON: `{"thinking": ..., "done": false}` for reasoning and
    `{"content": ..., "done": false}` for the answer, a line per kind of what arrived together,
    then the stored outcome with `"done": true`. However the response ends (done, client gone,
    cancelled before it began), the reply stream is closed, so a reply cut short is stored as
    stopped."""

    media_type = "application/x-ndjson"

    def __init__(
        self, stream: ReplyStream | PieceBatches, in_thread: InThread | None = None
    ) -> None:
        """A stream to read in `in_thread`, or batches already being read (PieceBatches.opened)."""
        if isinstance(stream, ReplyStream):
            assert in_thread is not None
            stream = PieceBatches(stream, in_thread)
        self.batches = stream
        self.stream = stream.stream
        super().__init__(self.lines())

    async def lines(self) -> AsyncIterator[bytes]:
        # The pieces that arrived together, in one write: reasoning as {"thinking": ...}, the
        # answer as {"content": ...}. An empty piece (queued at a busy model) is a chance to
        # notice a client gone, and sends nothing.
        async for batch in self.batches:
            if lines := piece_lines(batch):
                yield lines
        yield ndjson({**jsonable_encoder(chat_reply(self.stream.reply)), "done": True})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # runs even when the request was cancelled
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                await self.batches.close()


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

    def remembered_collections(conversation_id: str | None) -> Sequence[str]:
        """A conversation keeps its collections, as the Chat page's picker does: those of its
        newest reply that still exist."""
        run = chat_service().last_run(conversation_id) if conversation_id else None
        if run is None or not run.options.get("collections"):
            return ()
        known = set(services().knowledge.collection_names())
        return tuple(name for name in run.options["collections"] if name in known)

    api.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )
    api.add_middleware(
        AccessGuard,
        origins=origins,
        token=token,
        open_paths=DOCS_PATHS,
        open_prefixes=(DOWNLOAD_PREFIX,),  # a History page's download link: its ticket is the key
    )
    api.add_middleware(RequestLog)  # outermost: refusals by the guard are logged too
    add_error_handlers(api)

    @api.post("/chat", response_model=ChatReply, responses=CHAT_ERRORS)
    async def chat(request: ChatRequest) -> Any:
        """Send a message and get the reply. An unknown conversation_id creates that conversation.

        With `"stream": true` the answer is NDJSON: `{"thinking": ..., "done": false}` for
        reasoning and `{"content": ..., "done": false}` for the answer, as the text arrives (the
        first token at once, then what came in the last few milliseconds, a line per kind), then
        the whole reply as without streaming, with `"done": true`. A client that hangs up
        mid-stream leaves the reply stored as stopped. `images` go to a vision model; any other
        model gets 422 before anything is stored.
        """
        params = request.model_params
        note(conversation=request.conversation_id, model=params.model)
        images = decoded_images(request.images)

        def send() -> ReplyStream:
            return chat_service().send(
                request.conversation_id,
                request.message,
                params.model,
                params.generation(remembered_collections(request.conversation_id)),
                images=images,
                parent_id=request.parent_id,
            )

        if request.stream:
            # sent and read on one worker thread: no hop between the send and its first piece
            return ReplyStreamResponse(await PieceBatches.opened(send, in_thread))
        stream = await in_thread(send)
        reply = await in_thread(stream.consume)
        note(
            conversation=reply.conversation_id,
            backend=reply.backend,
            host=reply.host,
            run_status=str(reply.status),
        )
        if isinstance(stream.failure, Busy) and not reply.text:
            # Stored as an error turn (rule 4 kept the message), answered as the retryable 503.
            return error_response(stream.failure)
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
    def history(
        conversation_id: str,
        tree: bool = Query(False, description="Every message of every branch, not the open one"),
    ) -> History:
        """The open branch of a conversation in order (with `tree=true` every message of every
        branch, each with its `parent_id`), each reply with its model, status and metrics."""
        service = chat_service()
        summary = service.conversation(conversation_id)
        if summary is None:
            raise NotFound(f"Conversation '{conversation_id}' was not found.")
        if tree:
            messages = service.branches.tree(conversation_id)
        else:
            messages = service.messages(conversation_id)
        stored = service.images([h for m in messages for h in m.images])
        images = {sha256: image.data for sha256, image in stored.items()}
        cited = services().knowledge.citations([m.run.id for m in messages if m.run is not None])
        return History(
            conversation=conversation_out(summary),
            messages=[history_message(m, images, cited) for m in messages],
        )

    @api.post("/history/{conversation_id}/open", response_model=History, responses=ERRORS)
    def open_branch(conversation_id: str, choice: BranchChoice) -> History:
        """Open the branch through `message_id` (what ‹ › do on the page): the conversation
        keeps it, and new messages go at its end. Answers the branch now open."""
        chat_service().branches.switch(conversation_id, choice.message_id)
        return history(conversation_id, tree=False)

    @api.post(
        "/history/{conversation_id}/fork",
        response_model=History,
        status_code=201,
        responses=ERRORS,
    )
    def fork(conversation_id: str, request: ForkRequest) -> History:
        """A new conversation holding the path from the first message to `message_id` (the
        page's "New conversation from here"). Answers the new conversation."""
        new_id = valid_conversation_id(request.conversation_id)
        forked = chat_service().branches.fork(conversation_id, request.message_id, new_id)
        return history(forked, tree=False)

    @api.get("/models", response_model=Models, responses=ERRORS)
    def models() -> Models:
        """The models of every backend, with where each runs."""
        listing = services().registry.list_models()
        if not listing.models and listing.unreachable:
            raise BackendUnavailable(" ".join(listing.unreachable.values()))
        return Models(
            models=[model_out(m) for m in listing.models], unreachable=listing.unreachable
        )

    @api.get("/backups", response_model=list[BackupOut], responses=ERRORS)
    def backups() -> list[BackupOut]:
        """The database's backups, newest first (taken on demand and once a day)."""
        return [backup_out(b) for b in services().backups.list()]

    @api.post("/backups", response_model=BackupOut, status_code=201, responses=ERRORS)
    def create_backup() -> BackupOut:
        """Take a consistent backup of the database now; the oldest beyond BACKUPS_KEEP go."""
        return backup_out(services().backups.create())

    @api.post("/backups/{name}/restore", response_model=RestoreOut, responses=ERRORS)
    def restore_backup(name: str, request: RestoreRequest) -> RestoreOut:
        """Replace the database with this backup (`{"confirm": true}`); the replaced file is
        kept beside the database."""
        aside = services().backups.restore(name)
        return RestoreOut(restored=name, replaced_file_kept_at=str(aside))

    def knowledge() -> KnowledgeService:
        return services().knowledge

    @api.post(
        "/documents",
        response_model=DocumentOut,
        status_code=201,
        responses={
            **ERRORS,
            202: {"model": DocumentOut, "description": "With wait=false: accepted, indexing"},
            413: {"model": ErrorOut, "description": "The file is over the size limit"},
            415: {"model": ErrorOut, "description": "Not a type it reads, or a damaged file"},
        },
    )
    async def add_document(
        file: Annotated[
            UploadFile, File(description="PDF, Word (.docx), HTML, Markdown or plain text")
        ],
        collection: Annotated[str, Form(description="The collection's name")] = DEFAULT_COLLECTION,
        wait: bool = Query(True, description="Answer once it is indexed (false: at once)"),
    ) -> Any:
        """Add a document to a collection ("default" is made on first use). A bad file (empty,
        damaged, too large, an unknown type) is refused and nothing is stored."""
        data = await file.read(MAX_DOCUMENT_BYTES + 1)
        name = file.filename or "upload"
        document = await in_thread(lambda: knowledge().add_file(name, data, collection, wait))
        return JSONResponse(
            jsonable_encoder(document_out(document)), status_code=201 if wait else 202
        )

    @api.get("/documents", response_model=list[DocumentOut], responses=ERRORS)
    def list_documents(
        collection: str | None = Query(None, description="Only this collection's"),
    ) -> list[DocumentOut]:
        """Documents with their collection, size, chunk count, embedding model and state."""
        return [document_out(d) for d in knowledge().documents(collection)]

    @api.get("/documents/{document_id}", response_model=DocumentOut, responses=ERRORS)
    def get_document(document_id: int) -> DocumentOut:
        """One document: poll it after `POST /documents?wait=false` until it is ready."""
        return document_out(knowledge().document(document_id))

    @api.delete("/documents/{document_id}", status_code=204, responses=ERRORS)
    def delete_document(document_id: int) -> Response:
        """Delete a document with its chunks and vectors (replies keep their citations)."""
        knowledge().delete_document(document_id)
        return Response(status_code=204)

    api.include_router(suite_routes(services))
    api.include_router(preset_routes(services))
    api.include_router(compare_routes(services))
    api.include_router(stats_routes(services))
    api.include_router(host_routes(services))
    api.include_router(model_routes(services))
    api.include_router(search_routes(services))
    api.include_router(pull_routes(services))
    api.include_router(transfer_routes(services))
    return api
