"""The core's shared vocabulary: messages, metrics, models, runs and their statuses.

Everything else in chatcore speaks in these types; this module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict


class ChatMessage(TypedDict):
    role: str  # system | user | assistant
    content: str


class RunStatus(StrEnum):
    """Where a reply stands. A str: it is stored and sent as its value."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    ERROR = "error"


FINISHED = (RunStatus.COMPLETE, RunStatus.STOPPED, RunStatus.ERROR)


@dataclass(frozen=True)
class Metrics:
    """What a backend reports when a reply ends. Durations in nanoseconds, as Ollama has them.

    Each field is also a column of the `runs` table under the same name (chatcore/storage/runs.py
    derives the table's metric columns from these fields).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_duration_ns: int | None = None
    load_duration_ns: int | None = None
    prompt_eval_duration_ns: int | None = None
    eval_duration_ns: int | None = None
    done_reason: str | None = None
    context_dropped: int = 0  # history messages left out to fit the context window
    num_ctx: int | None = None  # the context window the reply was generated in, when known

    @property
    def tokens_per_second(self) -> float | None:
        if not self.completion_tokens or not self.eval_duration_ns:
            return None
        return self.completion_tokens / self.eval_duration_ns * 1e9

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


# What a backend streams: text pieces as they arrive, then exactly one Metrics when the reply
# ends. Plain strings rather than a wrapper object: one piece is handled per token.
Piece = str | Metrics


@dataclass(frozen=True)
class ModelInfo:
    name: str
    backend: str  # "ollama" or "embedded"
    host: str  # the Ollama URL, or "local" for the embedded engine
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    size_bytes: int | None = None
    available: bool = True
    details: dict[str, str] = field(default_factory=dict)
    modified_at: datetime | None = None
    # In a merged listing: every host that has this model, the reachable ones first.
    hosts: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        if self.backend == "embedded":
            return "in this app"
        return ", ".join(self.hosts or (self.host,))

    @property
    def label(self) -> str:
        return f"{self.name} · {self.where}"


@dataclass(frozen=True)
class RunRecord:
    """One generation run as stored: who answered, how it ended, and its metrics."""

    id: int
    model: str
    backend: str
    host: str
    status: RunStatus
    error: str | None
    ttft_ms: float | None
    options: dict[str, Any]
    metrics: Metrics


@dataclass(frozen=True)
class StoredMessage:
    """A message of a conversation; a reply carries the run that produced it."""

    id: int
    role: str
    content: str
    created_at: datetime
    run: RunRecord | None


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    models: list[str]


# --- the knowledge base ---


class DocumentStatus(StrEnum):
    INDEXING = "indexing"
    READY = "ready"
    ERROR = "error"


@dataclass(frozen=True)
class Chunk:
    """A passage of a document as the chunker cut it: where it sits, and under which heading."""

    position: int  # its order in the document, from 0
    text: str
    heading: str | None = None
    page: int | None = None  # for paged formats (PDF), from 1
    start_char: int = 0  # where it starts in the document's Markdown


@dataclass(frozen=True)
class Collection:
    name: str
    embedding_model: str  # "<backend>:<model>", e.g. "embedded:multilingual-e5-small"
    dimensions: int | None  # known once the first vector is stored
    documents: int
    chunks: int
    created_at: datetime


@dataclass(frozen=True)
class Document:
    id: int
    collection: str
    name: str
    media_type: str
    size_bytes: int
    status: DocumentStatus
    error: str | None
    chunk_count: int
    embedding_model: str | None
    created_at: datetime
    indexed_at: datetime | None


@dataclass(frozen=True)
class Citation:
    """A passage that went into a reply's prompt, as [number] in it; kept with the run, text
    included, so the reply's sources stay readable after the document is deleted."""

    number: int
    document_id: int
    document_name: str
    collection: str
    chunk_id: int
    text: str
    score: float  # the fused (reciprocal-rank) score that chose it
    similarity: float | None  # cosine similarity to the question, when the vector side found it
    heading: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Retrieval:
    """What the knowledge base gave one reply: its passages and what finding them cost."""

    collections: tuple[str, ...]
    citations: tuple[Citation, ...]
    retrieval_ms: float
