"""The interface every backend implements; the types it speaks are in chatcore.types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from chatcore.params import GenerationParams
from chatcore.types import ChatMessage, ModelInfo, Piece


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

        Raises DashboardError subclasses, before the first piece or in the middle of the stream.
        """
        ...
