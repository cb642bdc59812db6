"""Streamlit pieces the pages share: the services, the sidebar, a message with its caption."""

from __future__ import annotations

from dataclasses import dataclass

import pandas  # noqa: F401  st.write_stream imports it on first use: not during the first reply
import streamlit as st

from chatcore.backends.registry import ModelListing
from chatcore.captions import reply_caption
from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError, InvalidInput
from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT, GenerationParams
from chatcore.services import Services, shared_services
from chatcore.types import ModelInfo, StoredMessage

MODEL_LIST_SECONDS = 15
RECENT_CONVERSATIONS = 15
PULL_HINT = (
    "No models are installed on Ollama yet. "
    "Pull one in a terminal, e.g. `ollama pull llama3.2`, then refresh."
)


@st.cache_resource
def services() -> Services:
    """One database, one registry, one chat service per process, shared by every session and by
    the REST API: chatcore.services holds the one object, so the API needs no Streamlit."""
    return shared_services()


@st.cache_data(ttl=MODEL_LIST_SECONDS, show_spinner=False)
def model_listing() -> ModelListing:
    return services().registry.list_models()


@dataclass(frozen=True)
class Choice:
    model: str | None
    params: GenerationParams


def current_choice() -> Choice:
    state = st.session_state
    return Choice(
        model=state.get("model"),
        params=GenerationParams(
            temperature=state.get("temperature", TEMPERATURE_DEFAULT),
            top_p=state.get("top_p", TOP_P_DEFAULT),
            max_tokens=state.get("max_tokens", MAX_TOKENS_DEFAULT),
            system_prompt=state.get("system_prompt", ""),
        ),
    )


# --- conversation selection (kept in the URL so a reload reopens it) ---


def current_conversation_id() -> str | None:
    if "conversation_id" not in st.session_state:
        st.session_state.conversation_id = st.query_params.get("c")
    return st.session_state.conversation_id


def open_conversation(conversation_id: str | None) -> None:
    st.session_state.conversation_id = conversation_id
    if conversation_id is None:
        st.query_params.pop("c", None)
    else:
        st.query_params["c"] = conversation_id


# --- the shared sidebar ---


def sidebar() -> None:
    with st.sidebar:
        model_picker()
        generation_controls()
        conversation_list()


def model_picker() -> None:
    listing = model_listing()
    models: dict[str, ModelInfo] = {m.name: m for m in listing.models if m.available}
    if not listing.unreachable and not any(m.backend == "ollama" for m in listing.models):
        st.info(PULL_HINT)
    if not models:
        for message in listing.unreachable.values():
            st.warning(message, icon="🔌")  # nothing else to chat with: keep saying it
        st.session_state.model = None
    else:
        if st.session_state.get("model") not in models:
            st.session_state.model = next(iter(models))  # e.g. the embedded one, Ollama down
        announce_unreachable(listing.unreachable, models[st.session_state.model])
        st.selectbox(
            "Model",
            options=list(models),
            format_func=lambda name: models[name].label,
            key="model",
        )
    st.button(
        "Refresh models", icon=":material/refresh:", width="stretch", on_click=model_listing.clear
    )


def announce_unreachable(unreachable: dict[str, str], chatting_with: ModelInfo) -> None:
    """Say that a server does not answer once per outage and session, not on every rerun."""
    announced: set[str] = st.session_state.setdefault("announced_unreachable", set())
    announced.intersection_update(unreachable)  # a server that came back is announced again
    for host, message in unreachable.items():
        if host not in announced:
            announced.add(host)
            st.toast(
                f"{message} Meanwhile you are chatting with {chatting_with.label}.",
                icon=":material/power_off:",
                duration="long",
            )


def generation_controls() -> None:
    st.slider("Temperature", 0.0, 1.0, TEMPERATURE_DEFAULT, 0.05, key="temperature")
    st.slider("Top p", 0.0, 1.0, TOP_P_DEFAULT, 0.05, key="top_p")
    st.number_input("Max tokens", 1, 32768, MAX_TOKENS_DEFAULT, 50, key="max_tokens")
    st.text_area("System prompt", key="system_prompt", placeholder="You are a helpful assistant.")


def conversation_list() -> None:
    """Drawn before the page runs, so a stop, which ends the run, leaves it in place."""
    with st.sidebar:
        st.divider()
        st.button(
            "New chat",
            key="new-chat",
            icon=":material/add:",
            width="stretch",
            on_click=open_conversation,
            args=(None,),
        )
        current = current_conversation_id()
        for conversation_id, title in services().chat.recent_titles(RECENT_CONVERSATIONS):
            st.button(
                title,
                key=f"conv-{conversation_id}",
                type="primary" if conversation_id == current else "tertiary",
                width="stretch",
                on_click=open_conversation,
                args=(conversation_id,),
            )


# --- messages ---


def show_message(message: StoredMessage) -> None:
    with st.chat_message(message.role):
        st.markdown(message.content)
        if message.run is not None:
            run = message.run
            if run.status == "error":
                st.error(run.error or "The reply failed.")
            st.caption(
                reply_caption(
                    run.model, run.metrics, run.ttft_ms, run.status, run.attempts, run.host
                )
            )


def stream_reply(stream: ReplyStream) -> None:
    """Show a reply as it streams; a stop or rerun closes the stream, which stores it as stopped."""
    with st.chat_message("assistant"):
        try:
            st.write_stream(stream)
        finally:
            stream.close()
        reply = stream.reply
        if reply.status == "error":
            st.error(reply.error or "The reply failed.")
        st.caption(
            reply_caption(
                reply.model, reply.metrics, reply.ttft_ms, reply.status, reply.attempts, reply.host
            )
        )


def show_refusal(error: InvalidInput | DashboardError, unsent: str | None = None) -> None:
    """An error raised before anything was stored: say it, and keep the user's text visible."""
    st.error(str(error))
    if unsent:
        st.caption("Your message was not sent; here it is to copy:")
        st.code(unsent, language=None)
