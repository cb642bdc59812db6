"""What every page shares in a session: the cached services and model listing, the sidebar's
choice of model and parameters, and the open conversation (kept in the URL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from chatcore.models import ModelListing
from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT, GenerationParams
from chatcore.services import Services, shared_services

MODEL_LIST_SECONDS = 15
# The sidebar's widget key for each GenerationParams field it holds.
SIDEBAR_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "system_prompt": "system_prompt",
}


@st.cache_resource
def services() -> Services:
    """One database, one registry, one chat service per process, shared by every session and by
    the REST API: chatcore.services holds the one object, so the API needs no Streamlit."""
    return shared_services()


@st.cache_data(ttl=MODEL_LIST_SECONDS, show_spinner=False)
def model_listing() -> ModelListing:
    return services().registry.list_models()


def models_changed() -> None:
    """A pull, delete or new host: the pickers list again on the next run."""
    model_listing.clear()


@dataclass(frozen=True)
class Choice:
    model: str | None
    params: GenerationParams


def current_choice() -> Choice:
    state = st.session_state
    return Choice(
        model=state.get("model"),
        params=GenerationParams(
            temperature=state.get(SIDEBAR_KEYS["temperature"], TEMPERATURE_DEFAULT),
            top_p=state.get(SIDEBAR_KEYS["top_p"], TOP_P_DEFAULT),
            max_tokens=state.get(SIDEBAR_KEYS["max_tokens"], MAX_TOKENS_DEFAULT),
            system_prompt=state.get(SIDEBAR_KEYS["system_prompt"], ""),
            collections=tuple(state.get("collections", ())),  # the sidebar's Knowledge picker
        ),
    )


def sidebar_values(defaults: dict[str, Any]) -> dict[str, Any]:
    """A model's own defaults (by GenerationParams field) under the sidebar's widget keys."""
    return {SIDEBAR_KEYS[name]: value for name, value in defaults.items() if name in SIDEBAR_KEYS}


def use_in_sidebar(model: str, defaults: dict[str, Any]) -> None:
    """Put a model and its defaults into the sidebar (a callback: before the widgets are drawn)."""
    st.session_state.update(sidebar_values(defaults))
    st.session_state.model = model


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
