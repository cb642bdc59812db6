"""History: every conversation, newest first; search, filter, read, rename, delete, transfer."""

from __future__ import annotations

import time
import zlib
from functools import partial

import streamlit as st

import ui
from chatcore import transfer
from chatcore.errors import DashboardError
from chatcore.history import SORT_COLUMNS, ConversationRow, Filters, OpenConversation
from ui import components
from ui.conversation_view import open_at_message
from ui.formatting import (
    backup_label,
    client_name,
    conversation_columns,
    conversation_summary,
    conversations_table,
    when,
)
from ui.i18n import N_, _
from ui.messages import show_message
from ui.safe_markdown import safe_label
from ui.search_marks import hit_markdown

services = ui.services()
history = services.history

MESSAGES_PER_PAGE = 100
HITS_PER_PAGE = 10  # search results drawn at first, and added by each "Show more results"
HITS_KEY = "history-hits-shown"
KEPT_KEYS = [
    "history-search",
    "history-models",
    "history-clients",
    "history-since",
    "history-until",
    "history-sort",
    "history-descending",
    "history-page-size",
    "history-page",
]
EMPTY = N_("No conversations yet: they appear here as soon as you chat.")
SORT_LABELS = {
    "updated_at": N_("Last active"),
    "created_at": N_("Created"),
    "title": N_("Title"),
    "messages": N_("Messages"),
    "tokens": N_("Tokens"),
    "client": N_("Client (tools through the proxies, grouped)"),
}
assert set(SORT_LABELS) == set(SORT_COLUMNS)


# --- which conversation is open (kept in this session) ---


def open_in_history(conversation_id: str | None, through: int | None = None) -> None:
    """Open a conversation; with `through` (a search hit's message) on the branch holding it,
    which the conversation then keeps open (Chat continues there too)."""
    if conversation_id is not None and through is not None:
        services.chat.branches.switch(conversation_id, through)
    st.session_state["history-open"] = conversation_id
    st.session_state.pop("history-confirm", None)


def open_from_list(conversation_id: str, through: int | None = None) -> None:
    """A callback of the list (a fragment): the conversation replaces the list, so the whole
    page runs again, not only the list."""
    open_in_history(conversation_id, through)
    st.rerun()


def jump_from_list(conversation_id: str, message_id: int) -> None:
    """A callback of the list: the page's next run goes to Chat (follow_continue_in_chat)."""
    open_at_message(conversation_id, message_id)
    st.rerun()


def download_buttons(ids: list[str] | None, stem: str, key: str) -> None:
    """JSON and Markdown downloads, made only when clicked (an export can be large)."""
    left, right = st.columns(2)
    left.download_button(
        _("Export JSON"),
        data=lambda: services.transfer.export_json(ids),
        file_name=f"{stem}.json",
        mime="application/json",
        icon=":material/download:",
        key=f"{key}-json",
        on_click="ignore",
        width="stretch",
    )
    right.download_button(
        _("Export Markdown"),
        data=lambda: services.transfer.export_markdown(ids),
        file_name=f"{stem}.md",
        mime="text/markdown",
        icon=":material/description:",
        key=f"{key}-md",
        on_click="ignore",
        width="stretch",
    )


def export_all_links() -> None:
    """Everything, as links to the REST API's streamed export: the file goes from the database
    to the browser a piece at a time, never whole in this process (a download button would
    hold it all in memory). A ticket stands in for the API token, for a while."""
    left, right = st.columns(2)
    for column, kind, label, icon in (
        (left, "json", _("Export JSON"), ":material/download:"),
        (right, "markdown", _("Export Markdown"), ":material/description:"),
    ):
        column.link_button(label, download_url(kind), icon=icon, width="stretch")


EXPORT_PATH = "api/export/download/"  # relative: the API is mounted beside the pages
TICKET_REUSE_SECONDS = 300  # a ticket lasts ten minutes; a fresh one before it runs out


def download_url(kind: transfer.Kind) -> str:
    held = st.session_state.get(f"history-ticket-{kind}")
    if held is None or time.monotonic() - held[1] > TICKET_REUSE_SECONDS:
        held = (services.transfer.download_ticket(None, kind), time.monotonic())
        st.session_state[f"history-ticket-{kind}"] = held
    return EXPORT_PATH + held[0]


def delete_button(ids: list[str], what: str, key: str) -> None:
    """A delete button that asks once more before anything goes."""
    if not components.confirming("history-confirm", key):
        st.button(_("Delete {what}…").format(what=what), key=f"{key}-ask", icon=":material/delete:",
                  on_click=components.ask_to_confirm, args=("history-confirm", key))  # fmt: skip
        return
    components.confirm_delete(
        "history-confirm",
        key,
        _("Delete {what} with all its messages and runs? This can't be undone.").format(what=what),
        on_delete=partial(delete_conversations, ids),
        yes=(_("Delete for good"), f"{key}-yes"),
        no=(_("Cancel"), f"{key}-no"),
        emphasized=True,
    )


def delete_conversations(ids: list[str]) -> None:
    """A callback (of the list's fragment too): the sidebar lists the conversations, so the
    whole page runs again."""
    gone = history.delete(ids)
    open_in_history(None)
    st.session_state["history-notice"] = _("Deleted {count} conversation(s).").format(count=gone)
    st.rerun()


# --- one conversation ---


def show_conversation(opened: OpenConversation) -> None:
    row = opened.summary
    st.button(_("All conversations"), key="history-back", icon=":material/arrow_back:",
              on_click=open_in_history, args=(None,))  # fmt: skip
    st.title(safe_label(row.title))
    st.caption(conversation_summary(row))
    actions = st.columns([1, 2, 1])
    with actions[0]:
        components.continue_in_chat(row.id, "history-continue", primary=True)
    with actions[1]:
        download_buttons([row.id], f"conversation-{row.id}", "history-one")
    with st.expander(_("Rename or delete")):
        rename_form(row)
        delete_button([row.id], _("this conversation"), "history-delete-one")
    show_dialogue(opened)


def rename_form(row: ConversationRow) -> None:
    with st.form("history-rename", border=False):
        title = st.text_input(_("Title"), value=row.title, key="history-title", max_chars=200)
        if st.form_submit_button(_("Rename"), icon=":material/edit:"):
            try:
                history.rename(row.id, title)
            except DashboardError as error:
                components.show_error(error)
                return
            st.rerun()


def show_dialogue(opened: OpenConversation) -> None:
    messages = opened.messages
    pages = components.page_count(len(messages), MESSAGES_PER_PAGE)
    page = 1
    if pages > 1:
        page = components.page_picker(
            _("Messages page (of {pages})").format(pages=pages), pages, "history-msg-page"
        )
    for message in components.page_of(messages, page, MESSAGES_PER_PAGE):
        show_message(message)
    if not messages:
        st.info(_("This conversation has no messages."))


# --- every conversation ---


def current_filters() -> Filters:
    left, clients_column, middle, right = st.columns([2, 1, 1, 1])
    models = left.multiselect(_("Models"), history.model_names(), key="history-models")
    clients = clients_column.multiselect(
        _("Clients"), history.client_names(), format_func=client_name, key="history-clients"
    )
    since = middle.date_input(_("Active since"), value=None, key="history-since")
    until = right.date_input(_("Started before or on"), value=None, key="history-until")
    return Filters(models=tuple(models), since=since, until=until, clients=tuple(clients))


def show_search(text: str, filters: Filters) -> None:
    result = history.search(text, filters)
    if not result.total:
        st.info(_("Nothing matches “{text}”.").format(text=text))
        return
    shown = len(result.hits)
    if not result.complete:
        st.caption(
            _(
                "The {shown} most recently active matching conversations (older ones may match)."
            ).format(shown=shown)
        )
    else:
        more = (
            _(" (the {shown} most recent shown)").format(shown=shown)
            if result.total > shown
            else ""
        )
        st.caption(
            _("{total:,} conversation(s) match{more}.").format(total=result.total, more=more)
        )
    shown_hits = st.session_state.get(HITS_KEY, HITS_PER_PAGE)
    for hit in result.hits[:shown_hits]:
        with st.container(border=True):
            st.button(safe_label(hit.title), key=f"hit-{hit.id}", type="tertiary",
                      on_click=open_from_list, args=(hit.id, hit.message_id))  # fmt: skip
            about = _("{when} · {count} matching message(s)").format(
                when=when(hit.updated_at), count=hit.matching_messages
            )
            st.markdown(hit_markdown(about, hit.snippet, text))  # escaped, the match in bold
            if hit.message_id is not None:
                jump_button(hit.id, hit.message_id)
    if (hidden := len(result.hits) - shown_hits) > 0:
        st.button(
            _("Show more results ({hidden} not shown)").format(hidden=hidden),
            key="history-more-hits",
            icon=":material/expand_more:",
            type="tertiary",
            on_click=show_more_hits,
        )


def show_more_hits() -> None:
    st.session_state[HITS_KEY] = st.session_state.get(HITS_KEY, HITS_PER_PAGE) + HITS_PER_PAGE


def new_search() -> None:
    st.session_state.pop(HITS_KEY, None)


def jump_button(conversation_id: str, message_id: int) -> None:
    st.button(_("Open in Chat at this message"), key=f"jump-{conversation_id}",
              icon=":material/chat:", on_click=jump_from_list,
              args=(conversation_id, message_id))  # fmt: skip


def show_table(filters: Filters) -> None:
    left, middle, right = st.columns([2, 1, 1])
    sort = left.selectbox(
        _("Sort by"),
        list(SORT_LABELS),
        format_func=lambda column: _(SORT_LABELS[column]),
        key="history-sort",
    )
    descending = middle.toggle(_("Descending"), value=True, key="history-descending")
    page_size = right.selectbox(_("Per page"), [25, 50, 100], index=1, key="history-page-size")
    listing = history.list_conversations(filters, sort, descending, page_number(), page_size)
    pages = components.page_count(listing.total, page_size)
    if not listing.total:
        st.info(_("No conversations match.") if filters != Filters() else _(EMPTY))
        return
    if not listing.rows:  # the page went past the end (a filter or a delete): show the last
        st.session_state["history-page"] = pages
        st.rerun()
    selection = st.dataframe(
        conversations_table(listing.rows),
        # a new key whenever the rows change, so a selection never applies to other rows
        key=table_key(filters, sort, descending, page_number(), page_size),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config=conversation_columns(),
    )
    components.page_picker(
        _("Page (of {pages}, {total:,} conversations)").format(pages=pages, total=listing.total),
        pages,
        "history-page",
    )
    chosen = [listing.rows[i].id for i in selection.selection.rows if i < len(listing.rows)]
    if chosen:
        selected_actions(chosen)
    else:
        st.caption(_("Select rows to open, export or delete them."))


def table_key(*listing: object) -> str:
    return f"history-table-{zlib.crc32(repr(listing).encode()):x}"


def page_number() -> int:
    return int(st.session_state.get("history-page", 1)) - 1


def selected_actions(chosen: list[str]) -> None:
    st.write(_("**{count_chosen} selected**").format(count_chosen=len(chosen)))
    if len(chosen) == 1:
        st.button(_("Open"), key="history-open-selected", icon=":material/open_in_new:",
                  on_click=open_from_list, args=(chosen[0],))  # fmt: skip
    download_buttons(chosen, "conversations", "history-selected")
    what = (
        _("this conversation")
        if len(chosen) == 1
        else _("these {count} conversations").format(count=len(chosen))
    )
    delete_button(chosen, what, "history-delete-selected")


def transfer_panel() -> None:
    with st.expander(_("Export and import")):
        st.caption(
            _(
                "JSON keeps everything (every message and its branches, runs and metrics, "
                "compare rounds and votes, presets) and can be imported here; files up to "
                "{value} MB. A bigger one imports through the API: `POST /api/import`."
            ).format(value=MAX_IMPORT_MB)
        )
        export_all_links()
        upload = st.file_uploader(
            _("Import a JSON export"),
            type=["json"],
            key="history-upload",
            max_upload_size=MAX_IMPORT_MB,
        )
        if upload is not None:
            st.button(_("Import"), key="history-import", on_click=import_upload)
        show_import_report()


MAX_IMPORT_MB = 2048  # as server.maxUploadSize (.streamlit/config.toml): Streamlit caps uploads
IMPORT_REPORT = "history-import-report"
IMPORT_ERROR = "history-import-error"


def import_upload() -> None:
    """A callback, so the list and the sidebar, drawn before this panel, show the imported
    conversations in the run that follows."""
    upload = st.session_state.get("history-upload")
    if upload is None:
        return
    try:
        upload.seek(0)  # the importer reads the file twice, a conversation at a time
        st.session_state[IMPORT_REPORT] = services.transfer.import_json(upload)
    except DashboardError as error:
        components.hold_error(IMPORT_ERROR, error)


def show_import_report() -> None:
    if message := st.session_state.pop(IMPORT_ERROR, None):
        st.error(_("Nothing was imported. {message}").format(message=message))
    report: transfer.ImportReport | None = st.session_state.pop(IMPORT_REPORT, None)
    if report is None:
        return
    st.success(
        _(
            "Imported {count_imported} conversation(s), {messages:,} messages and {runs:,} runs."
        ).format(count_imported=len(report.imported), messages=report.messages, runs=report.runs)
    )
    if report.skipped:
        titles = [safe_label(title) for title in report.skipped_titles[:20]]
        st.info(
            _("Skipped {count} already here:").format(count=len(report.skipped))
            + " "
            + ", ".join(titles)
            + (" …" if len(report.skipped) > 20 else "")
        )


def backups_panel() -> None:
    """Back up now, see the kept backups, restore one after a confirmation."""
    with st.expander(_("Backups")):
        backups = services.backups.list()
        st.caption(
            _(
                "A backup is a consistent copy of the database, taken while the app "
                "runs: once a day on its own and whenever you ask. The newest {keep} "
                "are kept (`BACKUPS_KEEP`), in the `backups` folder beside the database."
            ).format(keep=services.backups.keep)
        )
        components.show_held_error("backup-error")
        st.button(_("Back up now"), key="backup-now", icon=":material/backup:", on_click=back_up)
        if not backups:
            st.info(_("No backups yet."))
            return
        names = [b.name for b in backups]
        labels = {b.name: backup_label(b.name, b.taken_at, b.size_bytes) for b in backups}
        chosen = st.selectbox(_("Backups, newest first"), names, format_func=labels.get,
                              key="backup-chosen")  # fmt: skip
        if chosen is None:
            return
        if not components.confirming("backup-confirm", chosen):
            st.button(
                _("Restore this backup…"),
                key="backup-restore-ask",
                icon=":material/restore:",
                on_click=components.ask_to_confirm,
                args=("backup-confirm", chosen),
            )
            return
        components.confirm_delete(
            "backup-confirm",
            chosen,
            _(
                "Replace the database with this backup? Everything stored after it was taken "
                "leaves the app; the current file is kept beside the database "
                "(…before-restore-…)."
            ),
            on_delete=partial(restore_backup, chosen),
            yes=(_("Restore it"), "backup-restore-yes"),
            no=(_("Cancel"), "backup-restore-no"),
            emphasized=True,
        )


def back_up() -> None:
    try:
        backup = services.backups.create()
    except DashboardError as error:
        components.hold_error("backup-error", error)
        return
    st.session_state["history-notice"] = _("Backed up: {name}").format(name=backup.name)


def restore_backup(name: str) -> None:
    try:
        services.backups.restore(name)
    except DashboardError as error:
        components.hold_error("backup-error", error)
        return
    open_in_history(None)
    st.session_state["history-notice"] = _("Restored the backup {name}.").format(name=name)


def keep_list_state() -> None:
    """Widgets not drawn in a run lose their state: keep the search and the filters while a
    conversation is open, so going back finds the list as it was."""
    for key in KEPT_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


@st.fragment
def conversation_list() -> None:
    """The search box, the filters and the results or the table. A fragment: a search, a filter
    or a page of the table reruns only this, not the sidebar and the rest of the page; what
    changes more than the list (opening a conversation, a delete) reruns the whole page."""
    search = st.text_input(
        _("Search conversations"),
        key="history-search",
        placeholder=_("Words in titles and messages"),
        on_change=new_search,
    )
    filters = current_filters()
    if search.strip():
        show_search(search, filters)
    else:
        show_table(filters)


# --- the screen ---

components.follow_continue_in_chat()
keep_list_state()
if notice := st.session_state.pop("history-notice", None):
    st.toast(notice)

open_id = st.session_state.get("history-open")
opened = history.open(open_id) if open_id else None
if opened is not None:
    show_conversation(opened)
else:
    if open_id:  # deleted meanwhile
        open_in_history(None)
    st.title(_("History"))
    conversation_list()
    transfer_panel()
    backups_panel()
