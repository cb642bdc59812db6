"""Models: the hosts (Ollama and OpenAI-compatible), the models on each, what is loaded, pulling
and deleting (Ollama's hosts only)."""

from __future__ import annotations

import streamlit as st

import ui
from chatcore.errors import DashboardError
from chatcore.hosts import OLLAMA, OPENAI
from chatcore.models import CAPABILITIES, ModelCard, param_defaults
from ui import components, pulls
from ui.formatting import (
    hosts_table,
    human_bytes,
    installed_table,
    parameter_label,
    parameters_table,
    running_table,
)
from ui.i18n import N_, _
from ui.presets import presets_manager
from ui.session import sidebar_values

# Ollama reads a negative duration as "forever".
KEEP_ALIVE = {
    "30m": N_("30 minutes"),
    "5m": N_("5 minutes"),
    "2h": N_("2 hours"),
    "-1m": N_("until unloaded"),
}

services = ui.services()
st.title(_("Models"))


def attempt(action, *args: str) -> None:  # type: ignore[no-untyped-def]
    """Run a button's action; a host's refusal is shown on the page, not raised."""
    try:
        action(*args)
    except DashboardError as error:
        components.hold_error("models-error", error)


# --- hosts ---


def add_host() -> None:
    try:
        host = services.hosts.add(st.session_state.get("new-host", ""))
    except DashboardError as error:
        components.hold_error("host-error", error)
        return
    st.session_state["new-host"] = ""
    st.session_state["models-host"] = host.url
    ui.models_changed()


def add_openai_host() -> None:
    try:
        host = services.hosts.add(
            st.session_state.get("new-openai-host", ""),
            kind=OPENAI,
            api_key=st.session_state.get("new-openai-key") or None,
        )
    except DashboardError as error:
        components.hold_error("host-error", error)
        return
    st.session_state["new-openai-host"] = st.session_state["new-openai-key"] = ""
    st.session_state["models-host"] = host.url
    ui.models_changed()


def remove_host(url: str) -> None:
    try:
        services.hosts.remove(url)
    except DashboardError as error:  # removed meanwhile (another tab, the REST API)
        components.hold_error("host-error", error)
    st.session_state.pop("models-host", None)
    ui.models_changed()


st.subheader(_("Hosts"))
statuses = services.hosts.statuses()
st.dataframe(hosts_table(statuses), hide_index=True, width="stretch")
for status in statuses:
    if status.error:
        st.warning(status.error, icon="🔌")
with st.form("add-host-form", clear_on_submit=False, border=False):
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.text_input(_("Add an Ollama host"), key="new-host", placeholder="192.168.1.20:11434")
    right.form_submit_button(_("Add host"), on_click=add_host, width="stretch")
with st.form("add-openai-host-form", clear_on_submit=False, border=False):
    url_column, key_column, button_column = st.columns([3, 2, 1], vertical_alignment="bottom")
    url_column.text_input(
        _("Add an OpenAI-compatible server (vLLM, SGLang, llama.cpp, LM Studio, LiteLLM)"),
        key="new-openai-host",
        placeholder="http://192.168.1.20:8000/v1",
    )
    key_column.text_input(
        _("API key (optional)"),
        key="new-openai-key",
        type="password",
        placeholder=_("sk-… or $ENV_VARIABLE"),
        help=_(
            "Stored in the dashboard's database; type $NAME to read it from the "
            "environment variable NAME instead. Only its last four characters are "
            "ever shown."
        ),
    )
    button_column.form_submit_button(_("Add server"), on_click=add_openai_host, width="stretch")
components.show_held_error("host-error")

hosts = [s.host for s in statuses]
if st.session_state.get("models-host") not in [h.url for h in hosts]:
    st.session_state["models-host"] = hosts[0].url
host = st.selectbox(_("Host"), [h.url for h in hosts], key="models-host")
current = next(s for s in statuses if s.host.url == host)
refresh, remove = st.columns(2)
refresh.button(
    _("Refresh"), key="models-refresh", icon=":material/refresh:", on_click=ui.models_changed
)
if current.host.removable:
    remove.button(_("Remove this host"), key="remove-host", on_click=remove_host, args=(host,))

# --- installed models ---

st.subheader(_("Installed on `{host}`").format(host=host))
if outcome := st.session_state.pop("models-outcome", None):
    st.success(outcome)
installed = ui.model_listing().by_host.get(host, [])
if not current.reachable:
    st.caption(_("The host does not answer: its models, as last seen, are unavailable."))
if installed:
    st.dataframe(installed_table(installed), hide_index=True, width="stretch")
elif current.reachable:
    st.info(_("No models on this host yet: pull one below."))


def delete_model(model: str) -> None:
    attempt(services.models.delete, host, model)
    if "models-error" not in st.session_state:
        st.session_state["models-outcome"] = _("Deleted {model} from {host}.").format(
            model=model, host=host
        )
    ui.models_changed()


def show_card(card: ModelCard) -> None:
    flags = [f":green-badge[{c}]" for c in CAPABILITIES if card.has(c)]
    st.markdown(" ".join(flags) or _("No vision, tools or thinking."))
    if card.context_length:
        st.caption(
            _("Trained context length: {context_length:,} tokens").format(
                context_length=card.context_length
            )
        )
    if card.parameters or card.system:
        st.dataframe(parameters_table(card), hide_index=True)
        defaults = param_defaults(card)
        st.button(
            _("Use these in the sidebar"),
            key="use-defaults",
            disabled=not defaults,
            on_click=ui.use_in_sidebar,
            args=(card.name, defaults),
            help=_("Sets {fields}").format(
                fields=", ".join(map(parameter_label, sidebar_values(defaults)))
                or _("nothing the sidebar holds")
            ),
        )
    else:
        st.caption(_("The model sets no parameters of its own."))


is_ollama = current.host.kind == OLLAMA
if not is_ollama:
    st.caption(
        _(
            "An OpenAI-compatible server: it lists and serves its models; load, "
            "pull and delete them on the server itself."
        )
    )
if current.reachable and installed and is_ollama:
    model = st.selectbox(_("Model"), [m.name for m in installed], key="models-model")
    try:
        show_card(services.models.card(host, model))
    except DashboardError as error:
        components.show_error(error)
    keep, preload, delete = st.columns([2, 1, 1], vertical_alignment="bottom")
    keep_alive = keep.selectbox(
        _("Keep loaded for"),
        list(KEEP_ALIVE),
        format_func=lambda keep: _(KEEP_ALIVE[keep]),
        key="keep-alive",
    )
    preload.button(
        _("Preload"),
        key="preload",
        on_click=attempt,
        args=(services.models.preload, host, model, keep_alive),
        help=_("Load it into memory now, so the first message does not wait for it"),
        width="stretch",
    )
    delete.button(
        _("Delete…"),
        key="delete",
        on_click=components.ask_to_confirm,
        args=("confirm-delete", model),
        width="stretch",
    )
    size = next((m.size_bytes for m in installed if m.name == model), None)
    components.confirm_delete(
        "confirm-delete",
        model,
        _("Delete {model} from {host}? This frees {size} on that disk.").format(
            model=model, host=host, size=human_bytes(size)
        ),
        on_delete=lambda: delete_model(model),
        yes=(_("Yes, delete"), "confirm-delete-yes"),
        no=(_("Keep it"), "confirm-delete-no"),
    )
components.show_held_error("models-error")

# --- running models ---

if current.reachable and is_ollama:
    st.subheader(_("Loaded in memory"))
    try:
        running = services.models.running(host)
    except DashboardError as error:
        running = []
        components.show_error(error)
    if running:
        st.dataframe(running_table(running), hide_index=True, width="stretch")
        for loaded in running:
            st.button(
                _("Unload {name} now").format(name=loaded.name),
                key=f"unload-{loaded.name}",
                on_click=attempt,
                args=(services.models.unload, host, loaded.name),
            )
    else:
        st.caption(_("Nothing is loaded: the first message to a model loads it."))

# --- pull ---

if current.reachable and is_ollama:
    st.subheader(_("Pull a model onto `{host}`").format(host=host))
    name_column, button_column = st.columns([4, 1], vertical_alignment="bottom")
    name = name_column.text_input(_("Model name"), key="pull-name", placeholder="llama3.2:1b")
    # The pull runs in the background: clicking anything else, or leaving, doesn't stop it.
    button_column.button(
        _("Pull"),
        key="pull",
        disabled=not name.strip(),
        width="stretch",
        on_click=pulls.start_pull,
        args=(host, "pull-name"),
    )
    pulls.pulls_section()

# --- presets ---

presets_manager()
