"""The screen for a database that can't be read at start: what happened, and the newest backup.

Nothing has been put in the damaged file's place; restoring moves it aside (kept) and puts a copy
of the backup there, after the user confirms.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from chatcore.backups import list_backups, restore_unreadable
from chatcore.config import load_settings
from chatcore.errors import DashboardError, DatabaseUnreadable
from ui import components
from ui.formatting import backup_label, with_log_reference
from ui.i18n import _
from ui.session import services

CONFIRM_KEY = "recovery-confirm"


def offer_newest_backup(error: DatabaseUnreadable) -> None:
    st.error(str(error), icon="🩹")
    db_path = load_settings().db_path
    backups = list_backups(db_path)
    if not backups:
        st.info(
            _(
                "There is no backup of this database yet, so nothing can be restored "
                "here. The file was left untouched: move it away to start with an "
                "empty database, or point CHAT_DB at another file."
            )
        )
        return
    newest = backups[0]
    st.write(
        _("The newest backup is **{value}**").format(
            value=backup_label(newest.name, newest.taken_at, newest.size_bytes)
        )
    )
    if not components.confirming(CONFIRM_KEY, newest.name):
        st.button(
            _("Restore the newest backup…"),
            key="recovery-ask",
            type="primary",
            icon=":material/restore:",
            on_click=components.ask_to_confirm,
            args=(CONFIRM_KEY, newest.name),
        )
        return
    components.confirm_delete(
        CONFIRM_KEY,
        newest.name,
        _(
            "Replace the unreadable database with this backup? The unreadable file is kept "
            "beside it (named …before-restore-…); conversations newer than the backup are not "
            "in it."
        ),
        on_delete=lambda: restore(str(db_path), newest.name),
        yes=(_("Restore it"), "recovery-yes"),
        no=(_("Cancel"), "recovery-no"),
        emphasized=True,
    )
    if message := st.session_state.pop("recovery-error", None):
        st.error(message)


def restore(db_path: str, name: str) -> None:
    try:
        restore_unreadable(Path(db_path), name)
    except DashboardError as error:
        components.hold_error("recovery-error", error)
        return
    services.clear()  # the next run opens the restored file
    st.session_state["recovery-done"] = _("Restored the backup {name}.").format(name=name)


def show_restored_notice() -> None:
    if notice := st.session_state.pop("recovery-done", None):
        st.success(with_log_reference(notice))
