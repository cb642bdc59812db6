"""The knowledge base on screen: citations under a reply, the sidebar's collection picker, and
the Knowledge page's pieces (collections, upload, paste, the documents table with progress)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from chatcore.errors import DashboardError
from chatcore.types import Citation, Collection, Document, DocumentStatus
from ui.components import show_error
from ui.formatting import human_bytes, when
from ui.i18n import N_, _
from ui.safe_markdown import safe_label, safe_markdown
from ui.session import services

COLLECTIONS_KEY = "collections"  # the sidebar's choice; ui.session reads it into the params
PROGRESS_SECONDS = 1.0
DOCUMENT_COLUMNS = {
    "name": N_("Document"),
    "collection": N_("Collection"),
    "size": N_("Size"),
    "chunks": N_("Chunks"),
    "model": N_("Embedding model"),
    "indexed": N_("Indexed"),
    "state": N_("State"),
}


# --- citations ---


def citation_label(c: Citation) -> str:
    parts = [f"[{c.number}] {c.document_name}"]
    if c.page is not None:
        parts.append(_("page {page}").format(page=c.page))
    if c.heading:
        parts.append(c.heading)
    score = (
        _("similarity {score}").format(score=f"{c.similarity:.2f}")
        if c.similarity is not None
        else _("keyword match")
    )
    return " · ".join([*parts, score])


def show_citations(citations: Sequence[Citation]) -> None:
    """Each source as an expander that opens on the passage; the passage is Markdown, quoted,
    with HTML left as text."""
    if not citations:
        return
    st.caption(
        _("Sources from the knowledge base ({count_citations})").format(
            count_citations=len(citations)
        )
    )
    for c in citations:
        # Document text is untrusted: its label and passage load nothing from other hosts.
        with st.expander(safe_label(citation_label(c)), icon=":material/format_quote:"):
            safe_markdown("\n".join("> " + line for line in c.text.splitlines()))
            st.caption(
                _("collection {collection} · fused score {score:.4f}").format(
                    collection=c.collection, score=c.score
                )
            )


# --- the sidebar ---


def collection_picker() -> None:
    names = services().knowledge.collection_names()
    if not names:
        st.session_state.pop(COLLECTIONS_KEY, None)
        return
    chosen = [n for n in st.session_state.get(COLLECTIONS_KEY, []) if n in names]
    st.session_state[COLLECTIONS_KEY] = chosen
    st.multiselect(
        _("Knowledge"),
        names,
        key=COLLECTIONS_KEY,
        placeholder=_("No documents"),
        help=_("Collections whose passages go into each message's prompt, cited in the reply."),
    )


# --- the Knowledge page ---


def collections_table(collections: Sequence[Collection]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                _("Collection"): c.name,
                _("Documents"): c.documents,
                _("Chunks"): c.chunks,
                _("Embedding model"): c.embedding_model,
                _("Dimensions"): c.dimensions,
                _("Created"): when(c.created_at),
            }
            for c in collections
        ]
    )


def state_of(d: Document) -> str:
    if d.status == DocumentStatus.INDEXING:
        progress = services().knowledge.progress(d.id)
        if progress and progress.total:
            return _("indexing {done}/{total}").format(done=progress.done, total=progress.total)
        return _("indexing")
    if d.status == DocumentStatus.ERROR:
        return _("error: {error}").format(error=d.error)
    return _("ready")


def documents_table(documents: Sequence[Document]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "name": d.name,
            "collection": d.collection,
            "size": human_bytes(d.size_bytes),
            "chunks": d.chunk_count,
            "model": d.embedding_model or "",
            "indexed": when(d.indexed_at) if d.indexed_at else "",
            "state": state_of(d),
        }
        for d in documents
    ]
    return pd.DataFrame(rows, columns=list(DOCUMENT_COLUMNS)).rename(
        columns={column: _(header) for column, header in DOCUMENT_COLUMNS.items()}
    )


def run_safely(action: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        action(*args, **kwargs)
    except DashboardError as error:
        show_error(error)
        return False
    return True


# --- Stats ---


def show_usage(usage: dict[str, Any]) -> None:
    """The Stats page's knowledge-base figures: how often replies searched it and what it cost."""
    st.subheader(_("Knowledge base"))
    replies, searched = int(usage["replies"] or 0), int(usage["with_knowledge"] or 0)
    if not searched:
        st.caption(_("No reply in this selection searched the knowledge base."))
        return
    share, median, p95, per, used = st.columns(5)
    share.metric(_("Replies that searched it"), f"{searched:,}", f"{searched / replies:.0%}")
    median.metric(_("Median retrieval"), f"{usage['median_ms']:.0f} ms")
    p95.metric(_("p95 retrieval"), f"{usage['p95_ms']:.0f} ms")
    per.metric(_("Passages per reply"), f"{usage['mean_chunks']:.1f}")
    used.metric(_("Replies given passages"), f"{int(usage['used_passages']):,}")
