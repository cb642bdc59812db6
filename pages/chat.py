"""Chat: the dialogue of the open conversation, a reply streaming in, stop and regenerate."""

import streamlit as st

import ui
from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError
from ui.branches import message_tools, start_edit
from ui.components import unavailable_model_notice, wait_for_the_last_stream
from ui.conversation_view import back_to_latest, dialogue_window, show_dialogue
from ui.conversation_view import showing_a_found_message as found_message_shown
from ui.i18n import _
from ui.messages import chat_prompt, show_refusal, show_user_turn, stream_reply

# A send the input's fragment hands to a whole run: (text, images), for one that changes the
# dialogue above it (a search hit's window goes back to the latest), which the fragment can't.
HANDED_OVER = "chat-send-handed-over"

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


def send(
    conversation: str | None, prompt: str, images: list[bytes], model: str
) -> ReplyStream | None:
    """The user's turn drawn, then stored by the send (before any reply text is shown)."""
    show_user_turn(prompt, images)
    try:
        return services.chat.send(
            conversation, prompt, model, ui.current_choice().params, images=images
        )
    except DashboardError as error:
        show_refusal(error, unsent=prompt)
        return None


def finish(pending: ReplyStream, stop_button: bool = False, fresh: bool = True) -> None:
    """Stream the reply where the run has got to, then the finished screen in a whole run."""
    ui.open_conversation(pending.reply.conversation_id)  # before streaming: a stop ends the run
    stream_reply(pending, stop_button=stop_button, fresh_place=fresh)
    st.rerun(scope="app")  # the finished screen: the caption, Regenerate, the sidebar's list


@st.fragment
def chat_box(conversation: str | None, disabled: bool, offer_regenerate: bool) -> None:
    """The chat input, and a plain send's turn and reply below the dialogue. A fragment: Enter
    reruns only this, so the sidebar, the pages' list and the dialogue on screen are neither
    run nor sent again before the reply's first text (the whole run comes after the reply)."""
    wait_for_the_last_stream()  # a stop (a rerun of this alone) shows the stored outcome
    model = ui.current_choice().model
    prompt, images = chat_prompt(model, disabled=disabled)
    if prompt and model and not disabled:
        if found_message_shown(conversation):  # the dialogue changes: a whole run sends it
            st.session_state[HANDED_OVER] = (prompt, images)
            st.rerun(scope="app")
        if (pending := send(conversation, prompt, images, model)) is not None:
            finish(pending)
        return
    if offer_regenerate:
        with st.container():  # in the place a streaming reply's Stop takes, which replaces it
            st.button(
                _("Regenerate"),
                key="regenerate",
                icon=":material/refresh:",
                on_click=ask_for_regeneration,
            )


# an edited message is sent as a new branch before the dialogue is drawn, as a regeneration is
pending = start_regeneration() or start_edit(conversation_id, choice.model, choice.params)
regenerating = pending is not None
handed_over: tuple[str, list[bytes]] | None = st.session_state.pop(HANDED_OVER, None)
if handed_over is not None and conversation_id:
    back_to_latest(conversation_id)  # the reply belongs at the end
# bounded: the latest turns (earlier ones on demand), read and drawn alone however long the chat
window = dialogue_window(conversation_id)
if pending is not None:  # its reply streams below, not from the stored dialogue
    window = window.without(pending.reply.message_id)

if not window.total and pending is None and handed_over is None:
    st.title(_("Chat"))
    st.caption(_("Pick a model in the sidebar and say something. Every turn is saved."))

show_dialogue(
    conversation_id,
    window,
    tools=lambda shown: message_tools(conversation_id, shown) if conversation_id else None,
)
model_missing = pending is None and unavailable_model_notice(choice.model, ui.model_listing())
busy = pending is not None or handed_over is not None
last_is_a_reply = window.last is not None and window.last.role == "assistant"
# Images only for a model that can see them.
chat_box(
    conversation_id,
    disabled=choice.model is None or model_missing or regenerating,
    offer_regenerate=not busy and last_is_a_reply,
)

if handed_over is not None and choice.model and not model_missing:
    pending = send(conversation_id, *handed_over, choice.model)
if pending is not None:
    finish(pending, stop_button=regenerating, fresh=False)  # drawn over what was there
