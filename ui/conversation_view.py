"""The Chat page's dialogue in a bounded window: however long a conversation is, a run draws at
most a few dozen messages, so opening it and sending in it cost what they cost in a short one.

Every rerun redraws what the page shows (Streamlit re-sends each element), so the cost of a
send grew with the conversation. The window shows the latest WINDOW messages; "Show earlier"
adds WINDOW more at a time, and a jump from a search hit (History) opens the window at the
message found, marked, with a way back to the latest.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from chatcore.branches import DialogueWindow
from chatcore.types import StoredMessage
from ui.components import CONTINUE_KEY
from ui.i18n import _
from ui.messages import show_message
from ui.session import open_conversation, services

WINDOW = 20  # messages drawn at first, and added by each "Show earlier"
CONTEXT_BEFORE = 1  # messages shown above a message jumped to
MessageTools = Callable[[StoredMessage], None]
FOCUS_KEY = "chat-focus"  # (conversation id, message id) a search hit jumped to
# How long a send puts off redrawing the stored dialogue, waiting for the reply's first text:
# what a run has not redrawn yet, Streamlit fades after half a second.
DEFER_AT_MOST = 0.3
EMPTY = DialogueWindow([], 0, 0)
LAST_WINDOW_KEY = "chat-last-window"  # ((conversation id, size, focus), the window read)


def jump_to(conversation_id: str, message_id: int) -> None:
    """Open `conversation_id` in Chat at `message_id` (call before switching to the page)."""
    st.session_state[FOCUS_KEY] = (conversation_id, message_id)
    st.session_state.pop(shown_key(conversation_id), None)


def open_at_message(conversation_id: str, message_id: int) -> None:
    """A callback: go to Chat with `conversation_id` open at `message_id` (the page that draws
    the button calls components.follow_continue_in_chat, as a callback can't switch pages)."""
    jump_to(conversation_id, message_id)
    st.session_state[CONTINUE_KEY] = conversation_id
    open_conversation(conversation_id)


def shown_key(conversation_id: str) -> str:
    return f"chat-shown-{conversation_id}"


def showing_a_found_message(conversation_id: str | None) -> bool:
    """Whether the window is open at a search hit (the last run drew it there)."""
    focus = st.session_state.get(FOCUS_KEY)
    return focus is not None and focus[0] == conversation_id


def focused_message(conversation_id: str) -> int | None:
    """The message a search hit jumped to, while the user is still reading around it. Sending a
    message ends it: the reply belongs at the end, so the window returns to the latest."""
    if not showing_a_found_message(conversation_id):
        return None
    if st.session_state.get("chat_prompt"):
        back_to_latest(conversation_id)
        return None
    return int(st.session_state[FOCUS_KEY][1])


def dialogue_window(conversation_id: str | None, as_drawn: bool = False) -> DialogueWindow:
    """What the dialogue shows of the open branch: read from the database, only those messages.

    `as_drawn`: the window the last run read, when it asked for the same one (a send redraws
    what is on screen while its reply streams; the run after it reads the dialogue again)."""
    if not conversation_id:
        return EMPTY
    shown = st.session_state.get(shown_key(conversation_id), WINDOW)
    focus = focused_message(conversation_id)
    asked = (conversation_id, shown, focus)
    last = st.session_state.get(LAST_WINDOW_KEY)
    if as_drawn and last is not None and last[0] == asked:
        return last[1]
    if focus is None:
        window = services().chat.branches.window(conversation_id, shown)
    else:  # grown upwards: the earlier messages asked for come above the one jumped to
        before = CONTEXT_BEFORE + shown - WINDOW
        window = services().chat.branches.window(conversation_id, shown, focus, before)
    st.session_state[LAST_WINDOW_KEY] = (asked, window)
    return window


def show_earlier(conversation_id: str) -> None:
    key = shown_key(conversation_id)
    st.session_state[key] = st.session_state.get(key, WINDOW) + WINDOW


def back_to_latest(conversation_id: str) -> None:
    st.session_state.pop(FOCUS_KEY, None)
    st.session_state.pop(shown_key(conversation_id), None)


def show_dialogue(
    conversation_id: str | None,
    window: DialogueWindow,
    tools: MessageTools | None = None,
) -> None:
    """The stored dialogue, bounded: the window's messages with their citations and captions,
    and `tools` (the branch switch, edit and fork) under each."""
    if not conversation_id or not window.messages:
        return
    focus = focused_message(conversation_id)
    if window.hidden_before:
        st.button(
            _("Show earlier messages ({hidden_before:,} not shown)").format(
                hidden_before=window.hidden_before
            ),
            key="chat-show-earlier",
            icon=":material/expand_less:",
            type="tertiary",
            on_click=show_earlier,
            args=(conversation_id,),
        )
    drawn = window.messages
    cited = services().knowledge.citations([m.run.id for m in drawn if m.run is not None])
    for message in drawn:
        citations = cited.get(message.run.id, []) if message.run else []
        if message.id == focus:
            with st.container(border=True, key="chat-found"):
                st.caption(_("Found by your search"), help=_("Jumped to from History"))
                show_message(message, citations, tools=tools)
        else:
            show_message(message, citations, tools=tools)
    if window.hidden_after:
        st.button(
            _("Back to the latest ({hidden_after:,} later messages)").format(
                hidden_after=window.hidden_after
            ),
            key="chat-back-to-latest",
            icon=":material/vertical_align_bottom:",
            type="secondary",
            on_click=back_to_latest,
            args=(conversation_id,),
        )
