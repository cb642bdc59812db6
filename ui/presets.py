"""Presets in the sidebar (pick one), on the Models page (save the sidebar's settings under a
name, delete), and the context size control; a model picked again gets its last parameters."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from chatcore.errors import DashboardError
from chatcore.presets import PRESET_FIELDS, Preset
from ui.formatting import think_label
from ui.i18n import N_, _
from ui.session import SIDEBAR_KEYS, current_choice, put_in_sidebar, services

PRESET_KEY = "preset"  # the sidebar's preset picker
NEW_NAME_KEY = "new-preset-name"
CONTEXT_HELP = N_(
    "The largest context window to ask the model for, in tokens. Empty: the app's cap "
    "(CONTEXT_MAX, 8,192 unless set). Each reply is sent with a window just large enough for "
    "the conversation and the reply, at most this and what the model was trained for; older "
    "turns that don't fit are left out, and the reply's caption says how many."
)


def preset_picker() -> None:
    presets = services().presets.list()
    if not presets:
        st.session_state.pop(PRESET_KEY, None)
        return
    names = [p.name for p in presets]
    if st.session_state.get(PRESET_KEY) not in (None, *names):
        st.session_state[PRESET_KEY] = None  # deleted meanwhile
    st.selectbox(
        _("Preset"),
        options=[None, *names],
        format_func=lambda name: _("none: your own settings") if name is None else name,
        key=PRESET_KEY,
        on_change=apply_chosen_preset,
        help=_("Sets the parameters below; manage presets on the Models page."),
    )


def apply_chosen_preset() -> None:
    name = st.session_state.get(PRESET_KEY)
    if name is None:
        return
    try:
        preset = services().presets.get(name)
    except DashboardError:
        return
    put_in_sidebar(preset.params)


def restore_last_params() -> None:
    """A model picked in the sidebar comes with the parameters it last ran with."""
    model = st.session_state.get("model")
    values = services().presets.last_params(model) if model else None
    if values is not None:
        put_in_sidebar(values)
        st.session_state[PRESET_KEY] = None  # the sidebar no longer shows a preset's values


def context_size_control() -> None:
    st.number_input(
        _("Context size"),
        min_value=256,
        max_value=1_048_576,
        value=None,
        step=1024,
        key=SIDEBAR_KEYS["context_size"],
        placeholder=_("automatic"),
        help=_(CONTEXT_HELP),
    )


# --- the Models page ---


def presets_manager() -> None:
    """The saved presets as a table; save the sidebar's settings as one; delete one."""
    st.subheader(_("Presets"))
    st.caption(
        _(
            "A preset is a named system prompt, temperature, top p, max tokens, "
            "thinking level and context size. Pick one in the sidebar."
        )
    )
    presets = services().presets.list()
    if presets:
        st.dataframe(presets_table(presets), hide_index=True, width="stretch")
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.text_input(_("Save the sidebar's settings as"), key=NEW_NAME_KEY, placeholder=_("Terse"))
    right.button(_("Save preset"), key="save-preset", on_click=save_sidebar_as_preset)
    if presets:
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        doomed = left.selectbox(
            _("Preset to delete"), [p.name for p in presets], key="preset-doomed"
        )
        right.button(
            _("Delete preset"), key="delete-preset", on_click=delete_preset, args=(doomed,)
        )
    if error := st.session_state.pop("preset-error", None):
        st.error(error)


def save_sidebar_as_preset() -> None:
    params = current_choice().params
    values = {name: getattr(params, name) for name in PRESET_FIELDS}
    try:
        saved = services().presets.save(st.session_state.get(NEW_NAME_KEY, ""), values)
    except DashboardError as error:
        st.session_state["preset-error"] = str(error)
        return
    st.session_state[NEW_NAME_KEY] = ""
    st.toast(_("Saved the preset {name}.").format(name=saved.name))


def delete_preset(name: str) -> None:
    try:
        services().presets.delete(name)
    except DashboardError as error:
        st.session_state["preset-error"] = str(error)


def presets_table(presets: list[Preset]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                _("name"): p.name,
                _("temperature"): p.params["temperature"],
                _("top p"): p.params["top_p"],
                _("max tokens"): p.params["max_tokens"],
                _("thinking"): think_label(p.params["think"]),
                _("context size"): p.params["context_size"],
                _("system prompt"): p.params["system_prompt"],
            }
            for p in presets
        ]
    )
