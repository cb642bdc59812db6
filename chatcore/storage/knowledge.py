"""The knowledge base's SQL: collections, documents, chunks, their vectors and keyword terms, the
two rankings retrieval fuses, and the passages and timings kept with each reply's run.

Vectors sit in chunk_vectors_<n>, one table per vector size n, as FLOAT[n] arrays: DuckDB's
array_cosine_similarity wants a fixed size. The collection is repeated in each row so a search
scans one table with no join.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from chatcore.storage.stats import StatsFilter, rollup_rows
from chatcore.types import Chunk, Citation, Collection, Document, DocumentStatus

BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class Ranked:
    chunk_id: int
    score: float


@dataclass(frozen=True)
class StoredChunk:
    id: int
    document_id: int
    document_name: str
    collection: str
    position: int
    heading: str | None
    page: int | None
    text: str


def vector_table(dimensions: int) -> str:
    if not 0 < int(dimensions) <= 65536:
        raise ValueError(f"no vector table for {dimensions} dimensions")
    return f"chunk_vectors_{int(dimensions)}"


def ensure_vector_table(cur: duckdb.DuckDBPyConnection, dimensions: int) -> str:
    table = vector_table(dimensions)
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"chunk_id BIGINT NOT NULL, collection VARCHAR NOT NULL, vector FLOAT[{int(dimensions)}] "
        "NOT NULL)"
    )
    return table


def named(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in result.description or ()]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


# --- collections ---


def create_collection(cur: duckdb.DuckDBPyConnection, name: str, embedding_model: str) -> None:
    cur.execute(
        "INSERT INTO collections (name, embedding_model) VALUES (?, ?)", [name, embedding_model]
    )


def collection_model(cur: duckdb.DuckDBPyConnection, name: str) -> tuple[str, int | None] | None:
    row = cur.execute(
        "SELECT embedding_model, dimensions FROM collections WHERE name = ?", [name]
    ).fetchone()
    return (row[0], row[1]) if row else None


def set_collection_model(
    cur: duckdb.DuckDBPyConnection, name: str, embedding_model: str, dimensions: int | None
) -> None:
    cur.execute(
        "UPDATE collections SET embedding_model = ?, dimensions = ? WHERE name = ?",
        [embedding_model, dimensions, name],
    )


def list_collections(cur: duckdb.DuckDBPyConnection) -> list[Collection]:
    rows = named(
        cur.execute(
            """
            SELECT c.name, c.embedding_model, c.dimensions, c.created_at,
                   count(d.id) AS documents, coalesce(sum(d.chunk_count), 0) AS chunks
            FROM collections c LEFT JOIN documents d ON d.collection = c.name
            GROUP BY ALL ORDER BY c.name
            """
        )
    )
    return [
        Collection(
            name=r["name"],
            embedding_model=r["embedding_model"],
            dimensions=r["dimensions"],
            documents=int(r["documents"]),
            chunks=int(r["chunks"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]


def delete_collection(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    for document_id in [
        int(row[0])
        for row in cur.execute("SELECT id FROM documents WHERE collection = ?", [name]).fetchall()
    ]:
        delete_document(cur, document_id)
    cur.execute("DELETE FROM collections WHERE name = ?", [name])


# --- documents ---

DOCUMENT_COLUMNS = (
    "id, collection, name, media_type, size_bytes, status, error, chunk_count, embedding_model, "
    "created_at, indexed_at"
)


def document_from(row: Mapping[str, Any]) -> Document:
    return Document(**{**row, "status": DocumentStatus(row["status"])})


def add_document(
    cur: duckdb.DuckDBPyConnection, collection: str, name: str, media_type: str, size_bytes: int
) -> int:
    row = cur.execute(
        "INSERT INTO documents (collection, name, media_type, size_bytes, status) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        [collection, name, media_type, size_bytes, DocumentStatus.INDEXING.value],
    ).fetchone()
    assert row is not None
    return int(row[0])


def get_document(cur: duckdb.DuckDBPyConnection, document_id: int) -> Document | None:
    rows = named(
        cur.execute(f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ?", [document_id])
    )
    return document_from(rows[0]) if rows else None


def list_documents(cur: duckdb.DuckDBPyConnection, collection: str | None = None) -> list[Document]:
    rows = named(
        cur.execute(
            f"SELECT {DOCUMENT_COLUMNS} FROM documents "
            "WHERE $collection IS NULL OR collection = $collection "
            "ORDER BY collection, created_at DESC, id DESC",
            {"collection": collection},
        )
    )
    return [document_from(r) for r in rows]


def document_ids(cur: duckdb.DuckDBPyConnection, collection: str) -> list[int]:
    return [
        int(row[0])
        for row in cur.execute(
            "SELECT id FROM documents WHERE collection = ? ORDER BY id", [collection]
        ).fetchall()
    ]


def mark_document(
    cur: duckdb.DuckDBPyConnection,
    document_id: int,
    status: DocumentStatus,
    error: str | None = None,
    embedding_model: str | None = None,
    chunk_count: int | None = None,
) -> None:
    cur.execute(
        """
        UPDATE documents SET status = $status, error = $error,
            embedding_model = coalesce($model, embedding_model),
            chunk_count = coalesce($chunks, chunk_count),
            indexed_at = CASE WHEN $status = 'ready' THEN now() ELSE indexed_at END
        WHERE id = $id
        """,
        {
            "status": DocumentStatus(status).value,
            "error": error,
            "model": embedding_model,
            "chunks": chunk_count,
            "id": document_id,
        },
    )


def delete_document(cur: duckdb.DuckDBPyConnection, document_id: int) -> bool:
    """The document, its chunks, their terms and vectors; False when there was none."""
    for table in vector_tables(cur):
        cur.execute(
            f"DELETE FROM {table} WHERE chunk_id IN (SELECT id FROM chunks WHERE document_id = ?)",
            [document_id],
        )
    cur.execute(
        "DELETE FROM chunk_terms WHERE chunk_id IN (SELECT id FROM chunks WHERE document_id = ?)",
        [document_id],
    )
    cur.execute("DELETE FROM chunks WHERE document_id = ?", [document_id])
    row = cur.execute("DELETE FROM documents WHERE id = ? RETURNING id", [document_id]).fetchone()
    return row is not None


def vector_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        str(row[0])
        for row in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'chunk\\_vectors\\_%' "
            "ESCAPE '\\'"
        ).fetchall()
    ]


# --- chunks, their terms and vectors ---


def add_chunks(
    cur: duckdb.DuckDBPyConnection,
    document_id: int,
    collection: str,
    chunks: Sequence[Chunk],
    terms: Sequence[Mapping[str, int]],
) -> list[int]:
    """Store a document's chunks with their keyword terms; returns the chunk ids in order."""
    ids = [
        int(row[0])
        for row in cur.execute(
            "SELECT nextval('chunks_id_seq') FROM range(?)", [len(chunks)]
        ).fetchall()
    ]
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "document_id": pa.array([document_id] * len(ids), pa.int64()),
            "collection": [collection] * len(ids),
            "position": pa.array([c.position for c in chunks], pa.int32()),
            "heading": [c.heading for c in chunks],
            "page": pa.array([c.page for c in chunks], pa.int32()),
            "start_char": pa.array([c.start_char for c in chunks], pa.int32()),
            "term_count": pa.array([sum(t.values()) for t in terms], pa.int32()),
            "text": [c.text for c in chunks],
        }
    )
    cur.register("incoming_chunks", table)
    cur.execute("INSERT INTO chunks SELECT * FROM incoming_chunks")
    cur.unregister("incoming_chunks")
    postings = [
        (cid, term, tf)
        for cid, counts in zip(ids, terms, strict=True)
        for term, tf in counts.items()
    ]
    add_terms(cur, collection, postings)
    return ids


def add_terms(
    cur: duckdb.DuckDBPyConnection, collection: str, postings: Sequence[tuple[int, str, int]]
) -> None:
    table = pa.table(
        {
            "chunk_id": pa.array([p[0] for p in postings], pa.int64()),
            "collection": [collection] * len(postings),
            "term": [p[1] for p in postings],
            "tf": pa.array([p[2] for p in postings], pa.int32()),
        }
    )
    cur.register("incoming_terms", table)
    cur.execute("INSERT INTO chunk_terms SELECT * FROM incoming_terms")
    cur.unregister("incoming_terms")


def add_vectors(
    cur: duckdb.DuckDBPyConnection,
    collection: str,
    chunk_ids: Sequence[int],
    vectors: Any,  # a sequence of equal-length float sequences, or a 2-d numpy array
) -> None:
    if not len(chunk_ids):
        return
    dimensions = len(vectors[0])
    target = ensure_vector_table(cur, dimensions)
    flat = pa.array(
        [float(x) for row in vectors for x in row]
        if not hasattr(vectors, "ravel")
        else vectors.astype("float32").ravel(),
        pa.float32(),
    )
    table = pa.table(
        {
            "chunk_id": pa.array(list(chunk_ids), pa.int64()),
            "collection": [collection] * len(chunk_ids),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dimensions),
        }
    )
    cur.register("incoming_vectors", table)
    cur.execute(
        f"INSERT INTO {target} SELECT chunk_id, collection, vector::FLOAT[{dimensions}] "
        "FROM incoming_vectors"
    )
    cur.unregister("incoming_vectors")


def drop_collection_vectors(cur: duckdb.DuckDBPyConnection, collection: str) -> None:
    for table in vector_tables(cur):
        cur.execute(f"DELETE FROM {table} WHERE collection = ?", [collection])


def chunk_texts(cur: duckdb.DuckDBPyConnection, document_id: int) -> list[tuple[int, str]]:
    return [
        (int(r[0]), str(r[1]))
        for r in cur.execute(
            "SELECT id, text FROM chunks WHERE document_id = ? ORDER BY position", [document_id]
        ).fetchall()
    ]


def chunks_by_id(cur: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, StoredChunk]:
    rows = named(
        cur.execute(
            """
            SELECT c.id, c.document_id, d.name AS document_name, c.collection, c.position,
                   c.heading, c.page, c.text
            FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.id IN (SELECT unnest($ids))
            """,
            {"ids": list(ids)},
        )
    )
    return {r["id"]: StoredChunk(**r) for r in rows}


# --- the two rankings ---


def nearest(
    cur: duckdb.DuckDBPyConnection,
    collections: Sequence[str],
    query: Sequence[float],
    limit: int,
) -> list[Ranked]:
    """The chunks whose vectors are most like `query`, by cosine similarity, best first.

    The query is cast once in a scalar subquery (a cast of the parameter in the expression ran
    per row: twice as slow), and list_contains beats an IN-subquery semi-join here."""
    table = vector_table(len(query))
    if table not in vector_tables(cur):
        return []
    n = len(query)
    rows = cur.execute(
        f"""
        SELECT chunk_id, array_cosine_similarity(vector, (SELECT $query::FLOAT[{n}])) AS score
        FROM {table} WHERE list_contains($collections, collection)
        ORDER BY score DESC LIMIT $limit
        """,
        {"query": list(query), "collections": list(collections), "limit": limit},
    ).fetchall()
    return [Ranked(int(r[0]), float(r[1])) for r in rows]


def collection_vectors(
    cur: duckdb.DuckDBPyConnection, collection: str, dimensions: int
) -> tuple[np.ndarray, np.ndarray]:
    """A collection's chunk ids and their vectors as one float32 matrix (a row per chunk), for the
    in-memory copy retrieval searches (chatcore/vector_index.py)."""
    table = vector_table(dimensions)
    if table not in vector_tables(cur):
        return np.empty(0, np.int64), np.empty((0, dimensions), np.float32)
    arrow = cur.sql(
        f"SELECT chunk_id, vector FROM {table} WHERE collection = $collection",
        params={"collection": collection},
    ).to_arrow_table()
    ids = arrow.column("chunk_id").to_numpy().astype(np.int64)
    flat = arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.astype(np.float32, copy=False).reshape(len(ids), dimensions)


def vectors_fingerprint(
    cur: duckdb.DuckDBPyConnection, collection: str, dimensions: int
) -> tuple[str, int, int]:
    """The collection's embedding model, how many vectors it holds and the sum of their chunk
    ids, in one query: chunk ids are never reused, so any added or deleted chunk changes it
    (~2 ms at 100,000 vectors)."""
    try:
        row = cur.execute(
            f"""
            SELECT (SELECT embedding_model FROM collections WHERE name = $collection),
                   count(*), coalesce(sum(chunk_id), 0)
            FROM {vector_table(dimensions)} WHERE collection = $collection
            """,
            {"collection": collection},
        ).fetchone()
    except duckdb.CatalogException:  # no vectors of this size yet
        model = collection_model(cur, collection)
        return (model[0] if model else "", 0, 0)
    assert row is not None
    return (row[0] or "", int(row[1]), int(row[2]))


def keyword_matches(
    cur: duckdb.DuckDBPyConnection,
    collections: Sequence[str],
    query_terms: Sequence[str],
    limit: int,
) -> list[Ranked]:
    """The chunks that best match the terms by BM25 (idf over the chosen collections)."""
    if not query_terms:
        return []
    rows = cur.execute(
        f"""
        WITH scope AS (
            SELECT count(*) AS n, greatest(avg(term_count), 1) AS avg_len FROM chunks
            WHERE collection IN (SELECT unnest($collections))
        ),
        hits AS (
            SELECT t.chunk_id, t.term, t.tf FROM chunk_terms t
            WHERE t.collection IN (SELECT unnest($collections))
              AND t.term IN (SELECT unnest($terms))
        ),
        df AS (SELECT term, count(*) AS df FROM hits GROUP BY term)
        SELECT h.chunk_id,
               sum(ln(1 + (scope.n - df.df + 0.5) / (df.df + 0.5))
                   * h.tf * ({BM25_K1} + 1)
                   / (h.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * c.term_count / scope.avg_len))
               ) AS score
        FROM hits h JOIN df USING (term) JOIN chunks c ON c.id = h.chunk_id, scope
        GROUP BY h.chunk_id ORDER BY score DESC, h.chunk_id LIMIT $limit
        """,
        {"collections": list(collections), "terms": list(query_terms), "limit": limit},
    ).fetchall()
    return [Ranked(int(r[0]), float(r[1])) for r in rows]


# --- what each reply was given ---


def save_retrieval(
    cur: duckdb.DuckDBPyConnection,
    run_id: int,
    collections: Sequence[str],
    retrieval_ms: float,
    citations: Sequence[Citation],
) -> None:
    cur.execute(
        "INSERT INTO run_retrievals VALUES (?, ?, ?, ?)",
        [run_id, list(collections), retrieval_ms, len(citations)],
    )
    if citations:
        cur.executemany(
            "INSERT INTO run_citations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    run_id,
                    c.number,
                    c.chunk_id,
                    c.document_id,
                    c.document_name,
                    c.collection,
                    c.heading,
                    c.page,
                    c.text,
                    c.score,
                    c.similarity,
                ]
                for c in citations
            ],
        )


def citations_of(
    cur: duckdb.DuckDBPyConnection, run_ids: Sequence[int]
) -> dict[int, list[Citation]]:
    rows = named(
        cur.execute(
            """
            SELECT run_id, number, document_id, document_name, collection, chunk_id, text, score,
                   similarity, heading, page
            FROM run_citations WHERE run_id IN (SELECT unnest($ids)) ORDER BY run_id, number
            """,
            {"ids": list(run_ids)},
        )
    )
    out: dict[int, list[Citation]] = {}
    for row in rows:
        run_id = row.pop("run_id")
        out.setdefault(run_id, []).append(Citation(**row))
    return out


def retrieval_totals(cur: duckdb.DuckDBPyConnection, f: StatsFilter) -> dict[str, Any]:
    """Over the finished replies the Stats filter picks: how many there were, how many searched
    the knowledge base and were given passages, the retrieval time's median and 95th
    percentile (ms), and the passages per searching reply."""
    where, params = f.where("r")
    summed, summed_params = rollup_rows(cur, f)
    # the replies from the Stats rollup, the rest from the few runs that searched: the runs are
    # only probed for the ids run_retrievals holds, never scanned for the count
    rows = named(
        cur.execute(
            f"""
            SELECT (SELECT coalesce(sum(runs), 0) FROM {summed}) AS replies,
                   count(k.run_id) AS with_knowledge,
                   count(k.run_id) FILTER (WHERE k.chunks_used > 0) AS used_passages,
                   quantile_cont(k.retrieval_ms, 0.5) AS median_ms,
                   quantile_cont(k.retrieval_ms, 0.95) AS p95_ms,
                   avg(k.chunks_used) AS mean_chunks
            FROM run_retrievals k JOIN runs r ON r.id = k.run_id
            WHERE {where}
            """,
            [*summed_params, *params],
        )
    )
    return rows[0]
