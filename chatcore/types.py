"""The core's shared vocabulary: messages, metrics, models, runs and their statuses.

Everything else in chatcore speaks in these types; this module imports nothing of the project.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Required, TypedDict

from chatcore.errors import InvalidInput

CONVERSATION_ID_MAX_CHARS = 100


def canonical_model(name: str) -> str:
    """The one name a model is stored, counted and filtered under. Ollama's rule: a name without
    a tag means `:latest` (`phi3` is `phi3:latest`). The tag follows the last `/` (a registry
    host may carry a port); a digest (`@sha256:...`) is left alone, and so are names that are
    not Ollama's, such as the embedded engine's "gemma3-270m (embedded)"."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    if not last or ":" in last or "@" in last or any(c.isspace() for c in name):
        return name
    return f"{name}:latest"


def model_spellings(names: tuple[str, ...] | list[str]) -> list[str]:
    """What a filter on `names` matches: each name as given and as its canonical name."""
    return list(dict.fromkeys(n for name in names for n in (name, canonical_model(name))))


class ChatMessage(TypedDict, total=False):
    role: Required[str]  # system | user | assistant | tool (a tool's result, relayed)
    content: Required[str]
    # The image files of a user message, for a vision model. Bytes, not base64: the ollama client
    # encodes bytes itself, while a str it first tries as a file path to read.
    images: list[bytes]
    # A relayed chat's tool use: an assistant message's calls; a tool message's answer to one
    # (OpenAI names the call's id, Ollama the function's name).
    tool_calls: list[ToolCall]
    tool_call_id: str
    tool_name: str


def checked_conversation_id(value: object) -> str:
    """A conversation id as stored: any printable text (Chinese too) of 1 to 100 characters,
    NFC-normalised so the same id typed on two keyboards is one conversation; no `/` (it travels
    in URL paths), no control or invisible format characters, no spaces at either end."""
    if not isinstance(value, str):
        raise InvalidInput("A conversation id is a string.")
    normalised = unicodedata.normalize("NFC", value)
    if not 1 <= len(normalised) <= CONVERSATION_ID_MAX_CHARS:
        raise InvalidInput(
            f"A conversation id is 1 to {CONVERSATION_ID_MAX_CHARS} characters "
            f"(this one has {len(normalised)})."
        )
    if "/" in normalised or not normalised.isprintable() or normalised != normalised.strip():
        raise InvalidInput(
            "A conversation id is printable text without '/', control characters or spaces "
            f"at either end (got {value!r})."
        )
    return normalised


def as_stored_id(value: str) -> str:
    """An id to look up as it would have been stored (lookups refuse nothing: unknown is None)."""
    return unicodedata.normalize("NFC", value)


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
    # Reasoning, by the app's clock and count (filled by the chat service, not the backend):
    answer_ms: float | None = None  # time to the first answer token (ttft_ms: any token)
    thinking_ms: float | None = None  # from the first thinking piece to the answer (or the end)
    thinking_tokens: int | None = None  # streamed thinking pieces (one per token from Ollama)
    answer_tokens: int | None = None  # completion tokens that were not thinking
    # Of context_dropped, the messages a summary note stood for (CONTEXT_OVERFLOW=summarise).
    context_summarised: int = 0
    tool_calls: str | None = None  # the reply's tool calls as JSON (ToolCall fields), if any

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed over every completion token, thinking included (Ollama's eval)."""
        if not self.completion_tokens or not self.eval_duration_ns:
            return None
        return self.completion_tokens / self.eval_duration_ns * 1e9

    @property
    def thought(self) -> bool:
        return bool(self.thinking_tokens)

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


@dataclass(frozen=True)
class Waiting:
    """Sent while a reply waits its turn at a busy model (a few times a second), so the caller
    regains control: it can show the queue, and a stop closes the stream at once."""

    ahead: int  # replies before this one, the one generating included


class Thinking(str):
    """A piece of the model's reasoning, streamed apart from the answer (Ollama's
    `message.thinking`, or text between `<think>` tags). A str, so it joins like text; the exact
    class `str` is the answer."""

    __slots__ = ()


@dataclass(frozen=True)
class ToolCall:
    """A function the model asks the client to call: OpenAI's id, the name, and the arguments
    as JSON text (OpenAI sends text; Ollama's object is dumped, and loaded again for it)."""

    id: str
    name: str
    arguments: str
    # The call as an Ollama host sent it, for Ollama clients unchanged (None: from elsewhere).
    sent: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def arguments_object(self) -> dict[str, Any]:
        """The arguments as Ollama takes them, an object; text that is not one gives {}."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def as_ollama(self) -> dict[str, Any]:
        """Ollama's shape: a call an Ollama host made exactly as it came."""
        if self.sent is not None:
            return self.sent
        return {"function": {"name": self.name, "arguments": self.arguments_object()}}

    def as_openai(self) -> dict[str, Any]:
        """OpenAI's shape: the id, and the arguments as JSON text."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ToolCalls(tuple[ToolCall, ...]):
    """A piece: the tool calls a model made (with `tools` in the request), given back to the
    client with the reply's end (chatcore/tool_calls.py)."""

    __slots__ = ()


# What a backend streams: text pieces as they arrive (answer text as plain `str`, reasoning as
# `Thinking`), then exactly one Metrics when the reply ends; Waiting pieces may come before the
# first text while the reply is queued at a busy model. Plain strings rather than a wrapper object
# for the answer: one piece is handled per token, and `piece.__class__ is str` is cheap.
Piece = str | Thinking | Metrics | Waiting | ToolCalls


@dataclass(frozen=True)
class ModelInfo:
    name: str
    backend: str  # "ollama", "openai" or "embedded"
    host: str  # the server's URL, or "local" for the embedded engine
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


ThinkValue = bool | str  # Ollama's `think`: on/off, or a level such as "low", "medium", "high"


@dataclass(frozen=True)
class Abilities:
    """What a model can do, from its server (Ollama's /api/show `capabilities` and `thinking`)."""

    capabilities: tuple[str, ...] = ()
    think_values: tuple[ThinkValue, ...] = ()  # the `think` values it lists; empty: on/off
    think_default: ThinkValue | None = None

    @property
    def vision(self) -> bool:
        return "vision" in self.capabilities

    @property
    def thinking(self) -> bool:
        return "thinking" in self.capabilities

    @property
    def think_choices(self) -> tuple[ThinkValue, ...]:
        """What a think control offers: the levels the model names, else on and off."""
        levels = tuple(v for v in self.think_values if isinstance(v, str))
        return levels or (True, False)


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
    request_id: str | None = None  # its line in the log (runs stored before logs: none)
    attempts: int = 1  # hosts tried before one answered; `host` is the one that did
    client: str | None = None  # who sent it through the proxies; None: the dashboard itself


@dataclass(frozen=True)
class StoredMessage:
    """A message of a conversation; a reply carries the run that produced it."""

    id: int
    role: str
    content: str
    created_at: datetime
    run: RunRecord | None
    thinking: str = ""  # a reply's reasoning, kept apart from its answer
    images: tuple[str, ...] = ()  # hashes of the images attached to a user message
    parent_id: int | None = None  # the message it follows in the tree; None: a first message
    siblings: tuple[int, ...] = ()  # it and the other answers to its parent, oldest first


@dataclass(frozen=True)
class Image:
    """An image attached to a message: its bytes, what they are, and the hash they are kept by."""

    sha256: str
    mime: str  # image/png, image/jpeg, image/webp or image/gif
    data: bytes


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    models: list[str]


@dataclass(frozen=True)
class SidebarEntry:
    """One line of the sidebar: a conversation, or a Compare round standing for the conversations
    of its columns (opened by its first column's conversation)."""

    conversation_id: str
    title: str
    round_id: int | None = None
    compared_models: tuple[str, ...] = ()


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
