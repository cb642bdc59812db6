"""The sidebar every page shares: the model picker, the generation controls, the conversations."""

from __future__ import annotations

import streamlit as st

from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT
from chatcore.types import ModelInfo
from ui.knowledge import collection_picker
from ui.session import (
    SIDEBAR_KEYS,
    current_conversation_id,
    model_listing,
    open_conversation,
    services,
)

RECENT_CONVERSATIONS = 15
PULL_HINT = (
    "No models are installed on Ollama yet. "
    "Pull one in a terminal, e.g. `ollama pull llama3.2`, then refresh."
)


def sidebar() -> None:
    with st.sidebar:
        model_picker()
        collection_picker()
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
    keys = SIDEBAR_KEYS
    st.slider("Temperature", 0.0, 1.0, TEMPERATURE_DEFAULT, 0.05, key=keys["temperature"])
    st.slider("Top p", 0.0, 1.0, TOP_P_DEFAULT, 0.05, key=keys["top_p"])
    st.number_input("Max tokens", 1, 32768, MAX_TOKENS_DEFAULT, 50, key=keys["max_tokens"])
    st.text_area(
        "System prompt", key=keys["system_prompt"], placeholder="You are a helpful assistant."
    )


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
