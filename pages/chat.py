"""Chat: the dialogue of the open conversation, a reply streaming in, stop and regenerate."""

from collections.abc import Callable
from contextlib import nullcontext

import streamlit as st

import ui
from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError
from ui.branches import message_tools, start_edit
from ui.components import unavailable_model_notice, wait_for_the_last_stream
from ui.conversation_view import (
    DEFER_AT_MOST,
    dialogue_window,
    show_dialogue,
    showing_a_found_message,
)
from ui.i18n import _
from ui.messages import chat_prompt, show_refusal, show_user_turn, stream_reply

services = ui.services()
choice = ui.current_choice()
conversation_id = ui.current_conversation_id()
if conversation_id and not services.chat.exists(conversation_id):
    ui.open_conversation(conversation_id := None)  # a stale link: start a new chat
ui.show_conversation_in_address(conversation_id)
wait_for_the_last_stream()  # a reply stopped mid-stream is stored before it is shown


def ask_for_regeneration() -> None:
    st.session_state.regenerate = True


def start_regeneration() -> ReplyStream | None:
    if not (st.session_state.pop("regenerate", False) and conversation_id and choice.model):
        return None
    try:
        return services.chat.regenerate(conversation_id, choice.model, choice.params)
    except DashboardError as error:
        show_refusal(error)
        return None


# an edited message is sent as a new branch before the dialogue is drawn, as a regeneration is
pending = start_regeneration() or start_edit(conversation_id, choice.model, choice.params)
regenerating = pending is not None
# a window that will change from the one on screen: a reply in place of another, or a search
# hit's window that a send leaves for the latest
changing = regenerating or showing_a_found_message(conversation_id)
# bounded: the latest turns (earlier ones on demand), read and drawn alone however long the chat;
# a plain send redraws the window on screen, as the last run read it, after its first text
plain_send = pending is None and not changing and bool(st.session_state.get("chat_prompt"))
window = dialogue_window(conversation_id, as_drawn=plain_send)
if pending is not None:  # its reply streams below, not from the stored dialogue
    window = window.without(pending.reply.message_id)

if not window.total and pending is None and not st.session_state.get("chat_prompt"):
    st.title(_("Chat"))
    st.caption(_("Pick a model in the sidebar and say something. Every turn is saved."))

# A sent message's reply fills the stored dialogue's place only after its first text: until then
# the browser keeps showing what the last run drew in that container (the same messages), so
# Enter waits for nothing old. A changing window is drawn at once, in the page itself, where
# nothing old can linger.
place = nullcontext() if changing else st.container()


def draw_dialogue() -> None:
    with place:
        show_dialogue(
            conversation_id,
            window,
            tools=lambda shown: message_tools(conversation_id, shown) if conversation_id else None,
        )


if changing:
    draw_dialogue()
model_missing = pending is None and unavailable_model_notice(choice.model, ui.model_listing())
# Images only for a model that can see them.
prompt, images = chat_prompt(
    choice.model, disabled=choice.model is None or model_missing or regenerating
)

if prompt and choice.model and not model_missing:
    show_user_turn(prompt, images)
    try:
        pending = services.chat.send(
            conversation_id, prompt, choice.model, choice.params, images=images
        )
    except DashboardError as error:
        show_refusal(error, unsent=prompt)

if pending is None and not changing:
    draw_dialogue()
elif pending is not None:
    ui.open_conversation(pending.reply.conversation_id)  # before streaming: a stop ends the run
    later: Callable[[], None] | None = None if changing else draw_dialogue
    if later is not None and not pending.first_piece_within(DEFER_AT_MOST):
        later()  # a model slow to start (loading, say): its dialogue now, not faded meanwhile
        later = None
    # a plain send's reply comes below its new user turn: nothing drawn there before to clear
    fresh = bool(prompt) and not changing
    stream_reply(pending, stop_button=regenerating, after_first_piece=later, fresh_place=fresh)
    st.rerun()  # the finished screen: the caption, Regenerate, the sidebar's list

if window.last is not None and window.last.role == "assistant":
    with st.container():  # in the place a streaming reply's Stop takes, which replaces it
        st.button(
            _("Regenerate"),
            key="regenerate",
            icon=":material/refresh:",
            on_click=ask_for_regeneration,
        )
