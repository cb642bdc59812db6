"""Chat: the dialogue of the open conversation, a reply streaming in, stop and regenerate."""

import streamlit as st

import ui
from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError
from ui.messages import show_message, show_refusal, stream_reply

services = ui.services()
choice = ui.current_choice()
conversation_id = ui.current_conversation_id()
if conversation_id and not services.chat.exists(conversation_id):
    ui.open_conversation(conversation_id := None)  # a stale link: start a new chat


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


pending = start_regeneration()
history = services.chat.messages(conversation_id) if conversation_id else []
if pending is not None:  # its reply streams below, not from the stored dialogue
    history = [m for m in history if m.id != pending.reply.message_id]

prompt = st.chat_input("Message", submit_mode="stop", disabled=choice.model is None)
if not history and pending is None and not prompt:
    st.title("Chat")
    st.caption("Pick a model in the sidebar and say something. Every turn is saved.")
cited = services.knowledge.citations([m.run.id for m in history if m.run is not None])
for message in history:
    show_message(message, cited.get(message.run.id, []) if message.run else [])

if prompt and choice.model:
    with st.chat_message("user"):
        st.markdown(prompt)
    try:
        pending = services.chat.send(conversation_id, prompt, choice.model, choice.params)
    except DashboardError as error:
        show_refusal(error, unsent=prompt)

if pending is not None:
    ui.open_conversation(pending.reply.conversation_id)  # before streaming: a stop ends the run
    stream_reply(pending)
    if conversation_id is None:
        st.rerun()  # list the new conversation in the sidebar

last_is_reply = pending is not None or (history and history[-1].role == "assistant")
if last_is_reply:
    st.button(
        "Regenerate", key="regenerate", icon=":material/refresh:", on_click=ask_for_regeneration
    )
