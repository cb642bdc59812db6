"""What every page shares in a session: the cached services and model listing, the sidebar's
choice of model and parameters, and the open conversation (kept in the URL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from chatcore.errors import DashboardError
from chatcore.models import ModelListing
from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT, GenerationParams
from chatcore.services import Services, shared_services
from chatcore.types import Abilities

MODEL_LIST_SECONDS = 15
ABILITIES_SECONDS = 60
THINK_KEY = "think"  # session key naming the think control's widget key, set by the sidebar
# The sidebar's widget key for each GenerationParams field it holds.
SIDEBAR_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "system_prompt": "system_prompt",
    "context_size": "context_size",
    "collections": "collections",  # the Knowledge picker (ui.knowledge.COLLECTIONS_KEY)
}
THINK_WIDGETS = {str: "think-levels", bool: "think-onoff"}  # the think control's widget keys


@st.cache_resource
def services() -> Services:
    """One database, one registry, one chat service per process, shared by every session and by
    the REST API: chatcore.services holds the one object, so the API needs no Streamlit."""
    return shared_services()


@st.cache_data(ttl=MODEL_LIST_SECONDS, show_spinner=False)
def model_listing() -> ModelListing:
    return services().registry.list_models()


@st.cache_data(ttl=ABILITIES_SECONDS, show_spinner=False)
def model_abilities(model: str) -> Abilities:
    """What the model can do (vision, thinking); nothing special when its server can't say."""
    try:
        return services().chat.abilities(model)
    except DashboardError:
        return Abilities()


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
            context_size=state.get(SIDEBAR_KEYS["context_size"]),
            think=chosen_think(),
            collections=tuple(state.get("collections", ())),  # the sidebar's Knowledge picker
        ),
    )


def chosen_think() -> bool | str | None:
    """The think control's value; None (model default) when the model shows no control."""
    widget = st.session_state.get(THINK_KEY)
    return st.session_state.get(widget) if widget else None


def sidebar_values(defaults: dict[str, Any]) -> dict[str, Any]:
    """A model's own defaults (by GenerationParams field) under the sidebar's widget keys."""
    return {SIDEBAR_KEYS[name]: value for name, value in defaults.items() if name in SIDEBAR_KEYS}


def use_in_sidebar(model: str, defaults: dict[str, Any]) -> None:
    """Put a model and its defaults into the sidebar (a callback: before the widgets are drawn)."""
    st.session_state.update(sidebar_values(defaults))
    st.session_state.model = model


def put_in_sidebar(values: dict[str, Any]) -> None:
    """A preset's or a model's last values into the sidebar's widgets, the think level too
    (a callback: before the widgets are drawn)."""
    st.session_state.update(sidebar_values(values))
    if "think" in values:
        think = values["think"]
        for kind, widget in THINK_WIDGETS.items():
            st.session_state[widget] = think if isinstance(think, kind) else None


# --- conversation selection (kept in the URL so a reload, a link, Back and Forward reopen it) ---

SETTINGS_OF = "settings_of_conversation"  # the conversation whose model and parameters are set


def history_navigation() -> bool:
    """True when this run comes from the browser's Back or Forward."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.is_history_navigation)


def current_conversation_id() -> str | None:
    """The open conversation. The address wins whenever it names one (a link, a reload, Back and
    Forward), and Back or Forward to an address without one is a new chat; only a page switch,
    which drops the address's parameters, keeps the conversation this session had open."""
    state = st.session_state
    in_url = st.query_params.get("c")
    if in_url is not None or history_navigation() or "conversation_id" not in state:
        state.conversation_id = in_url
    return state.conversation_id


def open_conversation(conversation_id: str | None) -> None:
    st.session_state.conversation_id = conversation_id
    if conversation_id is None:
        st.query_params.pop("c", None)
    else:
        st.query_params["c"] = conversation_id


def show_conversation_in_address(conversation_id: str | None) -> None:
    """The Chat page names what it shows: after a page switch the address has no `c` yet."""
    if st.query_params.get("c") != conversation_id:
        open_conversation(conversation_id)


def follow_open_conversation() -> None:
    """Opening a conversation (reload, link, sidebar, Continue in Chat) picks the model and the
    parameters its newest reply ran with, so it is carried on as it was. Call it before the
    sidebar's widgets are drawn."""
    conversation_id = current_conversation_id()
    state = st.session_state
    if conversation_id is None:
        state.pop(SETTINGS_OF, None)  # reopening it later picks its settings again
        return
    if state.get(SETTINGS_OF) == conversation_id:
        return
    state[SETTINGS_OF] = conversation_id
    run = services().chat.last_run(conversation_id)
    if run is not None:
        # A conversation keeps its collections: a reply stored without any leaves none picked.
        use_in_sidebar(run.model, {"collections": [], **run.options})
