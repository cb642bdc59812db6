"""Knowledge: collections of documents the chat can quote, how each was indexed, and what to
add or delete. Indexing runs in the background; the table follows its progress."""

import streamlit as st

import ui
from chatcore.documents import MAX_DOCUMENT_BYTES
from ui.i18n import _
from ui.knowledge import (
    PROGRESS_SECONDS,
    collections_table,
    documents_table,
    run_safely,
)

services = ui.services()
knowledge = services.knowledge

st.title(_("Knowledge"))
st.caption(
    _(
        "Documents you add here are cut into passages and indexed in this "
        "app's database. Pick collections under **Knowledge** in the sidebar, "
        "and the chat quotes and cites them."
    )
)

collections = knowledge.collections()
names = [c.name for c in collections]

with (
    st.expander(_("New collection"), expanded=not collections, icon=":material/add:"),
    st.form("new-collection", clear_on_submit=True, border=False),
):
    name = st.text_input(_("Name"), placeholder="manuals", key="new-collection-name")
    model = st.selectbox(
        _("Embedding model"), knowledge.embedding_models(), key="new-collection-model"
    )
    if st.form_submit_button(_("Create")) and run_safely(knowledge.create_collection, name, model):
        st.rerun()

if collections:
    st.subheader(_("Collections"))
    st.dataframe(collections_table(collections), hide_index=True, width="stretch")

    add_file, add_text = st.tabs([_("Upload files"), _("Paste text")])
    with add_file, st.form("upload", clear_on_submit=True, border=False):
        target = st.selectbox(_("Collection"), names, key="upload-collection")
        files = st.file_uploader(
            _("PDF, Word, HTML, Markdown or text"),
            type=["pdf", "docx", "html", "htm", "md", "markdown", "txt"],
            accept_multiple_files=True,
            max_upload_size=MAX_DOCUMENT_BYTES // 2**20,
        )
        if st.form_submit_button(_("Add")) and files:
            for upload in files:
                run_safely(knowledge.add_file, upload.name, upload.getvalue(), target, wait=False)
    with add_text, st.form("paste", clear_on_submit=True, border=False):
        target = st.selectbox(_("Collection"), names, key="paste-collection")
        title = st.text_input(_("Title"), placeholder=_("Notes"))
        text = st.text_area(_("Text"), height=200)
        if st.form_submit_button(_("Add")):
            run_safely(knowledge.add_text, title, text, target, wait=False)

    @st.fragment(run_every=PROGRESS_SECONDS)
    def documents() -> None:
        """Redrawn every second while anything is indexing; the chat stays usable meanwhile."""
        listed = knowledge.documents()
        st.subheader(_("Documents"))
        if not listed:
            st.info(_("No documents yet: upload a file or paste some text above."))
            return
        st.dataframe(documents_table(listed), hide_index=True, width="stretch")

    documents()

    st.subheader(_("Change or delete"))
    left, right = st.columns(2)
    with left, st.form("delete-document", border=False):
        listed = knowledge.documents()
        picked = st.selectbox(
            _("Document"),
            listed,
            format_func=lambda d: f"{d.name} ({d.collection})",
            key="delete-document-choice",
        )
        pressed = st.form_submit_button(_("Delete document"), icon=":material/delete:")
        if pressed and picked and run_safely(knowledge.delete_document, picked.id):
            st.rerun()
    with right, st.form("collection-actions", border=False):
        chosen = st.selectbox(_("Collection"), names, key="collection-choice")
        new_model = st.selectbox(_("Embedding model"), knowledge.embedding_models(), key="reindex")
        reindex, delete = st.columns(2)
        if reindex.form_submit_button(_("Re-index with this model"), icon=":material/sync:"):
            run_safely(knowledge.change_embedding_model, chosen, new_model)
        pressed = delete.form_submit_button(_("Delete collection"), icon=":material/delete:")
        if pressed and run_safely(knowledge.delete_collection, chosen):
            st.rerun()
