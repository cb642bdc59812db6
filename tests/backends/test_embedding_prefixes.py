"""Ollama embedding models get the query and passage prefixes their families were trained with,
recognised by name whatever the namespace or tag; unknown models get none."""

from __future__ import annotations

import pytest

from chatcore.backends.embeddings import (
    E5_INSTRUCT_QUERY,
    QWEN3_QUERY,
    SEARCH_QUERY_INSTRUCTION,
    prefixes_for,
    with_prefixes,
)


@pytest.mark.parametrize(
    ("model", "query", "document"),
    [
        ("nomic-embed-text", "search_query: ", "search_document: "),
        ("nomic-embed-text:v1.5", "search_query: ", "search_document: "),
        ("nomic-embed-text-v2-moe:latest", "search_query: ", "search_document: "),
        ("jeffh/intfloat-multilingual-e5-large:f16", "query: ", "passage: "),
        ("yxchia/multilingual-e5-small", "query: ", "passage: "),
        ("someone/multilingual-e5-large-instruct:q8_0", E5_INSTRUCT_QUERY, ""),
        ("mxbai-embed-large:335m", SEARCH_QUERY_INSTRUCTION, ""),
        ("snowflake-arctic-embed:s", SEARCH_QUERY_INSTRUCTION, ""),
        ("snowflake-arctic-embed2", "query: ", ""),
        ("qwen3-embedding:0.6b", QWEN3_QUERY, ""),
        ("dengcao/Qwen3-Embedding-8B:Q4_K_M", QWEN3_QUERY, ""),
        ("bge-m3", "", ""),
        ("all-minilm", "", ""),
        ("granite-embedding:278m", "", ""),
        ("llama3.2", "", ""),
        ("gemma3:270m", "", ""),  # "e5" only as a word of the name, not inside another
    ],
)
def test_known_families_get_their_prefixes(model: str, query: str, document: str) -> None:
    assert (prefixes_for(model).query, prefixes_for(model).document) == (query, document)


def test_questions_and_passages_are_prefixed_apart() -> None:
    texts = ["How fast?", "It turns at 1450 rpm."]
    assert with_prefixes("nomic-embed-text", texts, query=True) == [
        "search_query: How fast?",
        "search_query: It turns at 1450 rpm.",
    ]
    assert with_prefixes("nomic-embed-text", texts, query=False)[1] == (
        "search_document: It turns at 1450 rpm."
    )
    assert with_prefixes("bge-m3", texts, query=True) == texts
