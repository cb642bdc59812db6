"""A conversation's branches on the Chat page: "‹ 2 / 3 ›" on a message with siblings, Edit on a
user message (sending it makes a new branch), and "New conversation from here" (a fork).

Clicks only record what was asked (callbacks); the page starts an edit's reply where it starts a
regenerated one, through `start_edit`, so the reply streams in the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from chatcore.branches import TOP
from chatcore.chat import ReplyStream, new_conversation_id
from chatcore.errors import DashboardError
from chatcore.params import GenerationParams
from chatcore.types import StoredMessage
from ui.components import show_error
from ui.i18n import N_, _
from ui.session import open_conversation, services

EDIT_ASKED = "edit-asked"  # session key: the Edit that was sent, until the page starts it
PREVIOUS, NEXT = "‹", "›"
EDIT_LABEL = N_("Edit")
SEND_EDIT_LABEL = N_("Send as a new branch")
FORK_LABEL = N_("New conversation from here")


@dataclass(frozen=True)
class EditAsked:
    parent_id: int  # the edited message's parent, or TOP for a first message
    text: str


def sibling_position(message: StoredMessage) -> str:
    """'2 / 3': where this message stands among the answers to its parent."""
    return f"{message.siblings.index(message.id) + 1} / {len(message.siblings)}"


def message_tools(conversation_id: str, message: StoredMessage) -> None:
    """Under a stored message: switch between its siblings, edit it (a user's), fork from it.

    One row holding only the tools the message has: every element is rendered again in the
    browser on each run, and a window of twenty messages drew five columns under each."""
    siblings = message.siblings
    place = siblings.index(message.id) if message.id in siblings else 0
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if len(siblings) > 1:
            earlier, later = (
                siblings[max(place - 1, 0)],
                siblings[min(place + 1, len(siblings) - 1)],
            )
            st.button(
                PREVIOUS,
                key=f"branch-prev-{message.id}",
                disabled=place == 0,
                on_click=switch_to,
                args=(conversation_id, earlier),
            )
            st.caption(sibling_position(message), width="content")
            st.button(
                NEXT,
                key=f"branch-next-{message.id}",
                disabled=place == len(siblings) - 1,
                on_click=switch_to,
                args=(conversation_id, later),
            )
        if message.role == "user":
            with st.popover(_(EDIT_LABEL), icon=":material/edit:"):
                key = f"edit-text-{message.id}"
                st.text_area(
                    _(EDIT_LABEL), value=message.content, key=key, label_visibility="collapsed"
                )
                st.button(
                    _(SEND_EDIT_LABEL),
                    key=f"edit-send-{message.id}",
                    on_click=ask_for_edit,
                    args=(message.parent_id, key),
                    type="primary",
                )
        st.button(
            _(FORK_LABEL),
            key=f"fork-{message.id}",
            icon=":material/call_split:",
            on_click=fork_from,
            args=(conversation_id, message.id),
            type="tertiary",
        )


def switch_to(conversation_id: str, message_id: int) -> None:
    services().chat.branches.switch(conversation_id, message_id)


def ask_for_edit(parent_id: int | None, text_key: str) -> None:
    text = st.session_state.get(text_key, "")
    st.session_state[EDIT_ASKED] = EditAsked(TOP if parent_id is None else parent_id, text)


def fork_from(conversation_id: str, message_id: int) -> None:
    forked = services().chat.branches.fork(conversation_id, message_id, new_conversation_id())
    open_conversation(forked)


def start_edit(
    conversation_id: str | None, model: str | None, params: GenerationParams
) -> ReplyStream | None:
    """Send an edited message as a new branch from its parent, if one was asked for."""
    asked: EditAsked | None = st.session_state.pop(EDIT_ASKED, None)
    if asked is None or conversation_id is None or model is None:
        return None
    try:
        return services().chat.send(
            conversation_id, asked.text, model, params, parent_id=asked.parent_id
        )
    except DashboardError as error:
        show_error(error)
        return None
