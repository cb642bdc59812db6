"""Chat: the dialogue of the open conversation, a reply streaming in, stop and regenerate."""

import streamlit as st

import ui
from chatcore.backends.base import BackendError
from chatcore.chat import InvalidInput

services = ui.services()
choice = ui.current_choice()
conversation_id = ui.current_conversation_id()


def regenerate_requested() -> None:
    st.session_state.regenerate = True


if conversation_id and services.chat.conversation(conversation_id) is None:
    ui.open_conversation(conversation_id := None)

pending = None
if st.session_state.pop("regenerate", False) and conversation_id and choice.model:
    try:
        pending = services.chat.regenerate(conversation_id, choice.model, choice.params)
    except (InvalidInput, BackendError) as error:
        ui.show_refusal(error)

history = services.chat.messages(conversation_id) if conversation_id else []
if not history and pending is None:
    st.title("Chat")
    st.caption("Pick a model in the sidebar and say something. Every turn is saved.")
for message in history:
    ui.show_message(message)

prompt = st.chat_input("Message", submit_mode="stop", disabled=choice.model is None)
if prompt and choice.model:
    with st.chat_message("user"):
        st.markdown(prompt)
    try:
        pending = services.chat.send(conversation_id, prompt, choice.model, choice.params)
    except (InvalidInput, BackendError) as error:
        ui.show_refusal(error, unsent=prompt)

if pending is not None:
    ui.stream_reply(pending)
    if pending.reply.conversation_id != conversation_id:
        ui.open_conversation(pending.reply.conversation_id)
        st.rerun()  # show the new conversation in the sidebar
    history = [*history, None]  # a reply is now last

if history and (history[-1] is None or history[-1].role == "assistant"):
    st.button("Regenerate", icon=":material/refresh:", on_click=regenerate_requested)
