"""The vector ranking's fast path: each collection's vectors held in memory as one L2-normalised
numpy matrix, so a question's cosine similarities are one matrix-vector product.

DuckDB stays the store and the fallback. Measured on 100,000 chunks x 384 dims (bench/knowledge.py)
on a busy 2-core machine, `array_cosine_similarity` over the FLOAT[384] table took 80-280 ms
(array_inner_product / array_dot_product on pre-normalised vectors were 70-95 ms: not enough),
while the same search in numpy takes ~30 ms. A matrix is loaded once per collection (the vectors
read back through Arrow) and used while the collection's fingerprint - its embedding model, size,
vector count and sum of chunk ids, one ~2 ms query - is unchanged, so a write through any path
(indexing, deletes, a restored backup) is noticed. Collections beyond the memory cap are searched
in DuckDB with array_cosine_similarity; both paths give the same ranking (tests/services/
test_vector_index.py).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chatcore.logs import event
from chatcore.storage import knowledge as store
from chatcore.storage.db import Database

# 512 MiB of float32: ~350,000 chunks of 384 dims held at once; the least recently searched
# collection goes first when a new one needs the room.
MEMORY_CAP_BYTES = 512 * 1024 * 1024

Fingerprint = tuple[str, int, int, int]  # embedding model, dimensions, vector count, sum of ids


@dataclass(frozen=True)
class Matrix:
    fingerprint: Fingerprint
    chunk_ids: np.ndarray  # int64, one per row
    unit_rows: np.ndarray  # float32, each row divided by its length (zero rows stay zero)

    @property
    def nbytes(self) -> int:
        return int(self.unit_rows.nbytes + self.chunk_ids.nbytes)


class VectorIndex:
    def __init__(self, db: Database, cap_bytes: int = MEMORY_CAP_BYTES) -> None:
        self.db = db
        self.cap_bytes = cap_bytes
        self._matrices: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # matrices read from DuckDB, for tests and the bench

    def nearest(
        self, collections: Sequence[str], query: Sequence[float], limit: int
    ) -> list[store.Ranked]:
        """The chunks of the collections most like `query` by cosine similarity, best first."""
        matrices = [self._matrix(name, len(query)) for name in dict.fromkeys(collections)]
        if any(m is None for m in matrices):  # too big to hold: DuckDB does it
            with self.db.cursor() as cur:
                return store.nearest(cur, collections, query, limit)
        return top([m for m in matrices if m is not None and len(m.chunk_ids)], unit(query), limit)

    def forget(self, collection: str) -> None:
        with self._lock:
            self._matrices.pop(collection, None)

    def warm(self, collection: str, dimensions: int) -> None:
        """Load the collection's matrix now (after indexing), so the next question doesn't wait.
        A failure here only costs time: the next question loads it again (or DuckDB answers)."""
        try:
            self._matrix(collection, dimensions)
        except Exception as error:  # the indexed document is fine either way
            event(
                "knowledge.warm_failed", logging.WARNING, collection=collection, error=repr(error)
            )

    def _matrix(self, collection: str, dimensions: int) -> Matrix | None:
        with self.db.cursor() as cur:
            current = fingerprint(cur, collection, dimensions)
        with self._lock:
            held = self._matrices.get(collection)
            if held is not None and held.fingerprint == current:
                self._matrices.move_to_end(collection)
                return held
        if current[2] * dimensions * 4 > self.cap_bytes:
            self.forget(collection)
            return None
        with self.db.cursor() as cur:
            loaded = load(cur, collection, dimensions)
        with self._lock:
            self.loads += 1
            self._matrices[collection] = loaded
            self._evict_beyond_cap(keep=collection)
        return loaded

    def _evict_beyond_cap(self, keep: str) -> None:
        while sum(m.nbytes for m in self._matrices.values()) > self.cap_bytes:
            oldest = next(iter(self._matrices))
            if oldest == keep:
                break
            del self._matrices[oldest]


def fingerprint(
    cur: store.duckdb.DuckDBPyConnection, collection: str, dimensions: int
) -> Fingerprint:
    model, count, id_sum = store.vectors_fingerprint(cur, collection, dimensions)
    return (model, dimensions, count, id_sum)


def load(cur: store.duckdb.DuckDBPyConnection, collection: str, dimensions: int) -> Matrix:
    """The matrix with the fingerprint of exactly the rows read (not of a later write)."""
    model = store.collection_model(cur, collection)
    ids, rows = store.collection_vectors(cur, collection, dimensions)
    stamp = (model[0] if model else "", dimensions, len(ids), int(ids.sum()))
    return Matrix(stamp, ids, unit_rows(rows))


def unit_rows(rows: np.ndarray) -> np.ndarray:
    lengths = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return rows / np.maximum(lengths, np.float32(1e-12))[:, None]


def unit(query: Sequence[float]) -> np.ndarray:
    vector = np.asarray(query, dtype=np.float32)
    length = float(np.linalg.norm(vector))
    return vector / length if length > 0 else vector


def top(matrices: Sequence[Matrix], query: np.ndarray, limit: int) -> list[store.Ranked]:
    """The best `limit` rows over all the matrices: argpartition, then sort only those."""
    if not matrices or limit <= 0:
        return []
    scores = np.concatenate([m.unit_rows @ query for m in matrices])
    ids = np.concatenate([m.chunk_ids for m in matrices])
    if len(scores) > limit:
        best = np.argpartition(-scores, limit - 1)[:limit]
    else:
        best = np.arange(len(scores))
    best = best[np.lexsort((ids[best], -scores[best]))]  # ties by chunk id: a stable answer
    return [store.Ranked(int(ids[i]), float(scores[i])) for i in best]
