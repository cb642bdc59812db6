"""The core's shared vocabulary: messages, metrics, models, runs and their statuses.

Everything else in chatcore speaks in these types; this module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict


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
