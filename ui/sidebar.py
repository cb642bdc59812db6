"""The sidebar every page shares: the model picker, the generation controls, the conversations."""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT
from chatcore.types import ModelInfo, SidebarEntry
from ui import narrow
from ui.formatting import model_label, picker_label, think_label, unreachable_text
from ui.i18n import LANGUAGES, N_, _, choose_language, current_language, keep_language_in_address
from ui.knowledge import collection_picker
from ui.presets import context_size_control, preset_picker, restore_last_params
from ui.pulls import pull_indicator
from ui.safe_markdown import safe_label
from ui.session import (
    SIDEBAR_KEYS,
    THINK_KEY,
    current_conversation_id,
    follow_open_conversation,
    model_abilities,
    model_listing,
    open_conversation,
    services,
)

RECENT_CONVERSATIONS = 15
SHOWN_KEY = "sidebar_conversations_shown"
OPEN_IN_CHAT_KEY = "sidebar-open-in-chat"  # a conversation chosen here, to show on the Chat page
PULL_HINT = N_(
    "No models are installed on Ollama yet. "
    "Pull one in a terminal, e.g. `ollama pull llama3.2`, then refresh."
)


def sidebar() -> None:
    follow_open_conversation()
    keep_language_in_address()
    with st.sidebar:
        language_switch()
        pull_indicator()  # a pull running in the background, from any page
        model_picker()
        model_abilities_controls()
        collection_picker()
        preset_picker()
        generation_controls()
        conversation_list()
        narrow.close_after_a_choice()


def follow_the_choice(page: StreamlitPage, chat_page: StreamlitPage) -> None:
    """Call before `sidebar()`, with the page about to run: a conversation chosen in the sidebar
    (or New chat) on another page opens on the Chat page, so the address names what is shown."""
    narrow.page_shown(page.url_path)
    if OPEN_IN_CHAT_KEY not in st.session_state:
        return
    conversation_id = st.session_state.pop(OPEN_IN_CHAT_KEY)
    if page.url_path == chat_page.url_path:
        open_conversation(conversation_id)
        return
    st.session_state.conversation_id = conversation_id  # the address gets it with the switch
    st.switch_page(chat_page, query_params={"c": conversation_id} if conversation_id else None)


def choose_conversation(conversation_id: str | None) -> None:
    """The sidebar's buttons: the conversation opens on the next run, on the Chat page (here, in
    a callback, the address would name it on the page still showing)."""
    st.session_state[OPEN_IN_CHAT_KEY] = conversation_id
    narrow.conversation_chosen()


def language_switch() -> None:
    """The interface's language: the browser's at first, then whatever is picked here."""
    languages = list(LANGUAGES)
    st.selectbox(
        "Language / 语言",  # in both, so it can be found whichever is on screen
        languages,
        index=languages.index(current_language()),
        format_func=LANGUAGES.get,
        key="language-switch",
        on_change=lambda: choose_language(st.session_state["language-switch"]),
    )


def model_picker() -> None:
    listing = model_listing()
    models: dict[str, ModelInfo] = {m.name: m for m in listing.models if m.available}
    if not listing.unreachable and not any(m.backend == "ollama" for m in listing.models):
        st.info(_(PULL_HINT))
    chosen = st.session_state.get("model")
    if not models and chosen is None:
        for host, detail in listing.unreachable.items():
            st.warning(
                unreachable_text(host, detail), icon="🔌"
            )  # nothing else to chat with: keep saying it
    else:
        if chosen is None:
            st.session_state.model = chosen = next(iter(models))  # e.g. embedded, Ollama down
        if chosen in models:
            say_unreachable(listing.unreachable, models[chosen])
        # A chosen model that stopped answering stays chosen: the Chat page says so and asks
        # before another model answers (see ui.components.unavailable_model_notice).
        options = list(models) if chosen in models else [chosen, *models]
        st.selectbox(
            _("Model"),
            options=options,
            format_func=lambda name: (
                picker_label(models[name])
                if name in models
                else _("{model} · offline").format(model=name)
            ),
            key="model",
            on_change=restore_last_params,  # the parameters it last ran with come back
        )
    st.button(
        _("Refresh models"),
        icon=":material/refresh:",
        width="stretch",
        on_click=model_listing.clear,
    )


def say_unreachable(unreachable: dict[str, str], chatting_with: ModelInfo) -> None:
    """A server that does not answer is said in the sidebar on every run while it is true, and
    the notice goes as soon as it answers again (the model listing is re-read every few
    seconds), unlike a toast that fades while the server is still down."""
    for host, detail in unreachable.items():
        message = unreachable_text(host, detail)
        st.warning(
            _("{message} Meanwhile you are chatting with {label}.").format(
                message=message, label=model_label(chatting_with)
            ),
            icon=":material/power_off:",
        )


def model_abilities_controls() -> None:
    """The think control, shown only for a thinking model (its levels, or on/off), and whether
    the model sees images."""
    model = st.session_state.get("model")
    abilities = model_abilities(model) if model else None
    st.session_state[THINK_KEY] = None
    if abilities is None:
        return
    if abilities.thinking:
        choices = abilities.think_choices
        widget = "think-levels" if isinstance(choices[0], str) else "think-onoff"
        st.session_state[THINK_KEY] = widget
        st.selectbox(
            _("Thinking"),
            options=[None, *choices],
            format_func=think_label,
            key=widget,
            help=_("Sent as Ollama's `think`; the model's default sends nothing."),
        )
    if not abilities.vision:
        st.caption(_("{model} can't see images.").format(model=model))


def generation_controls() -> None:
    keys = SIDEBAR_KEYS
    st.slider(_("Temperature"), 0.0, 1.0, TEMPERATURE_DEFAULT, 0.05, key=keys["temperature"])
    st.slider(_("Top p"), 0.0, 1.0, TOP_P_DEFAULT, 0.05, key=keys["top_p"])
    st.number_input(_("Max tokens"), 1, 32768, MAX_TOKENS_DEFAULT, 50, key=keys["max_tokens"])
    st.text_area(
        _("System prompt"), key=keys["system_prompt"], placeholder=_("You are a helpful assistant.")
    )
    context_size_control()


def conversation_list() -> None:
    """Drawn before the page runs, so a stop, which ends the run, leaves it in place."""
    with st.sidebar:
        st.divider()
        st.button(
            _("New chat"),
            key="new-chat",
            icon=":material/add:",
            width="stretch",
            on_click=choose_conversation,
            args=(None,),
        )
        current = current_conversation_id()
        shown: int = st.session_state.setdefault(SHOWN_KEY, RECENT_CONVERSATIONS)
        entries = services().chat.sidebar_entries(shown + 1)  # one more: is there more to show?
        for entry in entries[:shown]:
            st.button(
                sidebar_label(entry),
                key=f"conv-{entry.conversation_id}",
                type="primary" if entry.conversation_id == current else "tertiary",
                width="stretch",
                on_click=choose_conversation,
                args=(entry.conversation_id,),
            )
        if len(entries) > shown:
            st.button(_("More…"), key="sidebar-more", type="tertiary", on_click=show_more)


def sidebar_label(entry: SidebarEntry) -> str:
    """A Compare round is one entry titled with the models it compared, not one per column."""
    if entry.round_id is None:
        return safe_label(entry.title)
    if "?" in entry.compared_models:  # blind and not voted yet: naming them would tell
        blind = _("{count} models, blind").format(count=len(entry.compared_models))
        return safe_label(f"⚖ {entry.title} · {blind}")
    return safe_label(f"⚖ {entry.title} · {' vs '.join(entry.compared_models)}")


def show_more() -> None:
    st.session_state[SHOWN_KEY] = st.session_state.get(SHOWN_KEY, RECENT_CONVERSATIONS) + (
        RECENT_CONVERSATIONS
    )
