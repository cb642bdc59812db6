"""The interface every backend implements, and the chunk, metrics and error types they share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Protocol, TypedDict

from chatcore.params import GenerationParams


class ChatMessage(TypedDict):
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class Metrics:
    """What a backend reports when a reply ends. Durations in nanoseconds, as Ollama has them."""

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


class BackendError(Exception):
    """A failure a user can understand: `str(error)` is the message to show."""

    status_code = 500


class BackendUnavailable(BackendError):
    status_code = 503


class ModelNotFound(BackendError):
    status_code = 404

    def __init__(self, model: str, detail: str = "") -> None:
        self.model = model
        hint = f"ollama pull {model}"
        super().__init__(
            detail or f"Model '{model}' was not found. Install it with `{hint}` or pick another."
        )


class BackendBusy(BackendError):
    status_code = 503


class PromptTooLong(BackendError):
    """The newest message (with the system prompt) alone does not fit the context window."""

    status_code = 413


class GenerationFailed(BackendError):
    """The backend reported an error, before or during the stream."""


class Backend(Protocol):
    """One place replies come from. The chat service depends on this and nothing more."""

    name: str
    host: str

    def list_models(self) -> list[ModelInfo]:
        """The models this backend can answer with; raises BackendUnavailable when unreachable."""
        ...

    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        """Stream a reply: text pieces, then its Metrics. Closing the iterator stops generation.

        Raises BackendError subclasses, before the first piece or in the middle of the stream.
        """
        ...
