"""The vector ranking's in-memory path against DuckDB's array_cosine_similarity over the same real
DuckDB file: the same chunks in the same order with the same scores; a write through any path
is noticed; a collection beyond the memory cap is searched in DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chatcore.storage import knowledge as store
from chatcore.storage.db import Database
from chatcore.vector_index import VectorIndex

DIMENSIONS = 48


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "vectors.duckdb")
    yield database
    database.close()


def add_collection(db: Database, name: str, ids: range, rows: np.ndarray) -> None:
    with db.transaction() as cur:
        store.create_collection(cur, name, "test-model")
        store.set_collection_model(cur, name, "test-model", DIMENSIONS)
        store.add_vectors(cur, name, list(ids), rows)


def duckdb_nearest(
    db: Database, collections: list[str], query: np.ndarray, limit: int
) -> list[store.Ranked]:
    with db.cursor() as cur:
        return store.nearest(cur, collections, query.tolist(), limit)


def test_numpy_and_duckdb_cosine_rank_alike_on_unnormalised_vectors(db: Database) -> None:
    rng = np.random.default_rng(7)
    # Lengths 0.1 to 10: the in-memory rows are normalised, DuckDB divides per row.
    rows = rng.standard_normal((2_000, DIMENSIONS)).astype(np.float32)
    rows *= rng.uniform(0.1, 10, (2_000, 1)).astype(np.float32)
    add_collection(db, "a", range(1, 1_001), rows[:1_000])
    add_collection(db, "b", range(5_001, 6_001), rows[1_000:])
    index = VectorIndex(db)
    for query in rng.standard_normal((20, DIMENSIONS)).astype(np.float32) * 3:
        served = index.nearest(["a", "b"], query.tolist(), 10)
        expected = duckdb_nearest(db, ["a", "b"], query, 10)
        assert [r.chunk_id for r in served] == [r.chunk_id for r in expected]
        assert np.allclose([r.score for r in served], [r.score for r in expected], atol=1e-5)
    assert index.loads == 2  # one matrix per collection, loaded once for all twenty questions


def test_only_the_chosen_collections_are_searched(db: Database) -> None:
    rng = np.random.default_rng(8)
    rows = rng.standard_normal((20, DIMENSIONS)).astype(np.float32)
    add_collection(db, "a", range(1, 11), rows[:10])
    add_collection(db, "b", range(11, 21), rows[10:])
    found = VectorIndex(db).nearest(["b"], rows[0].tolist(), 5)
    assert {r.chunk_id for r in found} <= set(range(11, 21))


def test_a_write_is_noticed_whatever_made_it(db: Database) -> None:
    rng = np.random.default_rng(9)
    rows = rng.standard_normal((30, DIMENSIONS)).astype(np.float32)
    add_collection(db, "a", range(1, 21), rows[:20])
    index = VectorIndex(db)
    assert index.nearest(["a"], rows[25].tolist(), 1)[0].chunk_id != 26
    with db.transaction() as cur:  # straight to storage, as a restored backup would be
        store.add_vectors(cur, "a", list(range(21, 31)), rows[20:])
    assert index.nearest(["a"], rows[25].tolist(), 1)[0].chunk_id == 26
    with db.transaction() as cur:
        cur.execute("DELETE FROM chunk_vectors_48 WHERE chunk_id = 26")
    assert 26 not in [r.chunk_id for r in index.nearest(["a"], rows[25].tolist(), 30)]
    assert index.loads == 3


def test_beyond_the_memory_cap_duckdb_answers(db: Database) -> None:
    rng = np.random.default_rng(10)
    rows = rng.standard_normal((100, DIMENSIONS)).astype(np.float32)
    add_collection(db, "big", range(1, 101), rows)
    index = VectorIndex(db, cap_bytes=100 * DIMENSIONS * 4 - 1)
    found = index.nearest(["big"], rows[3].tolist(), 5)
    assert found == duckdb_nearest(db, ["big"], rows[3], 5)
    assert found[0].chunk_id == 4
    assert index.loads == 0


def test_an_empty_or_unknown_collection_finds_nothing(db: Database) -> None:
    with db.transaction() as cur:
        store.create_collection(cur, "empty", "test-model")
    assert VectorIndex(db).nearest(["empty", "missing"], [1.0] * DIMENSIONS, 5) == []
