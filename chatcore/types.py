"""The core's shared vocabulary: messages, metrics, models, runs and their statuses.

Everything else in chatcore speaks in these types; this module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Required, TypedDict


class ChatMessage(TypedDict, total=False):
    role: Required[str]  # system | user | assistant
    content: Required[str]
    # The image files of a user message, for a vision model. Bytes, not base64: the ollama client
    # encodes bytes itself, while a str it first tries as a file path to read.
    images: list[bytes]


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


class Thinking(str):
    """A piece of the model's reasoning, streamed apart from the answer (Ollama's
    `message.thinking`, or text between `<think>` tags). A str, so it joins like text; the exact
    class `str` is the answer."""

    __slots__ = ()


# What a backend streams: text pieces as they arrive (answer text as plain `str`, reasoning as
# `Thinking`), then exactly one Metrics when the reply ends. Plain strings rather than a wrapper
# object for the answer: one piece is handled per token, and `piece.__class__ is str` is cheap.
Piece = str | Thinking | Metrics


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
