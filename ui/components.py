"""Screen pieces more than one page draws: an error, Continue in Chat, confirm before deleting,
paging, a pull's progress, and a Compare round (live or stored)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import streamlit as st

from chatcore.compare import Column, LiveRound, StoredEntry, StoredRound
from chatcore.errors import (
    BackendFailed,
    BackendUnavailable,
    Busy,
    DashboardError,
    DatabaseLocked,
    DatabaseUnreadable,
    DocumentTooLarge,
    InvalidInput,
    ModelNotFound,
    NotFound,
    PromptTooLong,
    StorageFailed,
    UnsupportedDocument,
)
from chatcore.logs import current_request_id
from chatcore.models import ModelListing
from ui.formatting import (
    answer_heading,
    collaboration_step,
    collaboration_steps,
    model_label,
    reply_caption,
    thinking_label,
    with_log_reference,
)
from ui.i18n import ENGLISH, N_, _, current_language
from ui.safe_markdown import safe_markdown
from ui.session import open_conversation

T = TypeVar("T")
CONTINUE_KEY = "continue-in-chat"
CLOCK_SECONDS = 0.25


# --- errors ---


# What each kind of failure is, in the interface's language. The core's own message (English,
# as the REST API gives it to programs) follows it when the interface is not in English.
ERROR_HEADLINES: list[tuple[type[DashboardError], str]] = [
    (ModelNotFound, N_("Model not found.")),
    (PromptTooLong, N_("The message is too long for the model's context window.")),
    (UnsupportedDocument, N_("This file can't be read.")),
    (DocumentTooLarge, N_("This file is too large.")),
    (InvalidInput, N_("That can't be used: nothing was saved.")),
    (NotFound, N_("Not found.")),
    (BackendUnavailable, N_("The model server can't be reached.")),
    (BackendFailed, N_("The model server reported an error.")),
    (Busy, N_("The model is busy: try again in a moment.")),
    (DatabaseLocked, N_("Another program is using the database file.")),
    (DatabaseUnreadable, N_("The database file can't be read.")),
    (StorageFailed, N_("Writing to disk failed; nothing already stored was lost.")),
    (DashboardError, N_("Something went wrong.")),
]


def explained(error: DashboardError) -> str:
    if current_language() == ENGLISH:
        return str(error)
    headline = next(text for kind, text in ERROR_HEADLINES if isinstance(error, kind))
    return f"{_(headline)} ({error})"


def show_error(error: DashboardError, lead: str = "") -> None:
    """Every failure the core explains is shown the same way: its message in red, with the id
    of its line in the log."""
    message = f"{lead} {explained(error)}" if lead else explained(error)
    st.error(with_log_reference(message, current_request_id()))


def hold_error(key: str, error: DashboardError) -> None:
    """A callback's failure, kept for the run that follows (a callback draws nothing)."""
    st.session_state[key] = with_log_reference(explained(error), current_request_id())


def show_held_error(key: str) -> None:
    if message := st.session_state.pop(key, None):
        st.error(message)


# --- a stop in the middle of a stream ---

LIVE_WORK = "live_work"  # the reply or round this session streams, until its outcome is shown
STOP_POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 5.0


class Finishing(Protocol):
    """A reply stream or a compare round: done once its outcome is stored."""

    @property
    def finished(self) -> bool: ...


def finish_after_a_stop(live: Finishing) -> None:
    """A stop ends the page's run mid-stream, before it draws the outcome. Drawn while `live`
    streams, a small fragment asks for a new run once the stopped work is stored, which shows
    it finished (a "stopped" mark, Regenerate, the vote) with no other click."""
    st.session_state[LIVE_WORK] = live
    with st.sidebar:
        _rerun_when_finished()


@st.fragment(run_every=STOP_POLL_SECONDS)
def _rerun_when_finished() -> None:
    live: Finishing | None = st.session_state.get(LIVE_WORK)
    if live is not None and live.finished:
        st.rerun(scope="app")


def wait_for_the_last_stream() -> None:
    """A run that stopped or was replaced mid-stream stores its outcome as it ends, on its own
    thread: wait for it, so this run shows the outcome rather than a reply still streaming."""
    live: Finishing | None = st.session_state.pop(LIVE_WORK, None)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while live is not None and not live.finished and time.monotonic() < deadline:
        time.sleep(0.02)


# --- a chosen model that does not answer ---


def unavailable_model_notice(model: str | None, listing: ModelListing) -> bool:
    """When the chosen model's host is down (or the model is gone), say so where the user types
    and offer another model, rather than answering with it unasked. True while that holds."""
    available = [m for m in listing.models if m.available]
    if model is None or any(m.name == model for m in available):
        return False
    known = next((m for m in listing.models if m.name == model), None)
    down = ", ".join(known.hosts or (known.host,)) if known else ", ".join(listing.unreachable)
    if down:
        st.warning(
            _(
                "**{model}** is not answering: its server ({down}) is down. Start it "
                "and refresh the models, or answer with another model."
            ).format(model=model, down=down),
            icon=":material/power_off:",
        )
    else:
        st.warning(
            _("**{model}** is not installed on any server.").format(model=model),
            icon=":material/help:",
        )
    for index, other in enumerate(available[:3]):
        st.button(
            _("Answer with {label} instead").format(label=model_label(other)),
            key=f"swap-model-{index}",
            on_click=pick_model,
            args=(other.name,),
        )
    return True


def pick_model(model: str) -> None:
    st.session_state.model = model


# --- Continue in Chat ---


def continue_in_chat(
    conversation_id: str, key: str, model: str | None = None, primary: bool = False
) -> None:
    """A button that opens the conversation on the Chat page (with `model` picked, if given)."""
    st.button(
        _("Continue in Chat"),
        key=key,
        icon=":material/chat:",
        type="primary" if primary else "secondary",
        on_click=_continue,
        args=(conversation_id, model),
    )


def _continue(conversation_id: str, model: str | None) -> None:
    if model is not None:
        st.session_state.model = model
    st.session_state[CONTINUE_KEY] = conversation_id
    open_conversation(conversation_id)


def follow_continue_in_chat() -> None:
    """Go to the Chat page when a Continue in Chat was clicked (a callback can't switch pages)."""
    if conversation_id := st.session_state.pop(CONTINUE_KEY, None):
        st.switch_page("pages/chat.py", query_params={"c": conversation_id})


# --- confirm before deleting ---


def ask_to_confirm(state_key: str, token: str) -> None:
    """The first click of a delete: remember what is to be confirmed."""
    st.session_state[state_key] = token


def drop_confirmation(state_key: str) -> None:
    st.session_state.pop(state_key, None)


def confirming(state_key: str, token: str) -> bool:
    return st.session_state.get(state_key) == token


def confirm_delete(
    state_key: str,
    token: str,
    warning: str,
    on_delete: Callable[[], None],
    yes: tuple[str, str],
    no: tuple[str, str],
    emphasized: bool = False,
) -> None:
    """While `token` awaits confirmation: the warning and a (label, key) button for each answer."""
    if not confirming(state_key, token):
        return
    st.warning(warning)
    left, right = st.columns(2)
    width = "stretch" if emphasized else "content"
    left.button(
        yes[0],
        key=yes[1],
        type="primary" if emphasized else "secondary",
        width=width,
        on_click=_delete,
        args=(state_key, on_delete),
    )
    right.button(no[0], key=no[1], width=width, on_click=drop_confirmation, args=(state_key,))


def _delete(state_key: str, on_delete: Callable[[], None]) -> None:
    drop_confirmation(state_key)
    on_delete()


# --- paging ---


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def page_picker(label: str, pages: int, key: str) -> int:
    """The 1-based page number, picked in a number input."""
    return int(st.number_input(label, 1, pages, key=key))


def page_of(items: Sequence[T], page: int, per_page: int) -> Sequence[T]:
    start = (page - 1) * per_page
    return items[start : start + per_page]


# --- a Compare round ---


def live_round(live: LiveRound) -> None:
    """Stream every column at once; a stop or rerun stops them all (each stored as stopped)."""
    finish_after_a_stop(live)
    slots = []
    for column, place in zip(live.columns, st.columns(len(live.columns)), strict=True):
        with place:
            st.subheader(answer_heading(column.label, column.model, live.blind, revealed=False))
            slots.append((st.empty(), st.empty(), st.empty()))
    ticked = 0.0
    try:
        for changed in live.updates():
            tick = time.monotonic() - ticked >= CLOCK_SECONDS
            ticked = time.monotonic() if tick else ticked
            for index, column in enumerate(live.columns):
                thinking, body, foot = slots[index]
                if index in changed and column.thoughts:
                    column_thinking(thinking, column, live.blind)
                if index in changed:
                    safe_markdown(column.text, body)
                if column.done and index in changed:
                    with foot.container():
                        column_outcome(column, live.blind)
                elif not column.done and tick:  # a ticking clock, which also lets a stop in
                    seconds = f"{time.monotonic() - live.started:.1f}"
                    waiting = (
                        _("streaming · {seconds} s")
                        if column.parts
                        else _("waiting for the first token · {seconds} s")
                    ).format(seconds=seconds)
                    if column.step is not None:  # models working together: which step
                        waiting = f"{collaboration_step(column.step, live.blind)} · {seconds} s"
                    foot.caption(waiting)
    finally:
        live.stop()


def column_thinking(slot: object, column: Column, blind: bool) -> None:
    """A column's reasoning, collapsed; in a blind round only that it thinks (its reasoning
    often names the model) until the reveal."""
    with slot.container():  # type: ignore[attr-defined]
        if blind:
            st.caption(
                _("Thinking… ({count} tokens; shown after the reveal)").format(
                    count=len(column.thoughts)
                )
            )
            return
        with st.expander(thinking_label(None), expanded=False, icon=":material/psychology:"):
            safe_markdown(column.thinking)


def column_outcome(column: Column, blind: bool) -> None:
    if column.error_message:
        st.error(column.error_message)
    if (reply := column.reply) is not None:
        name = _("Answer {label}").format(label=column.label) if blind else column.model
        st.caption(reply_caption(name, reply.metrics, reply.ttft_ms, reply.status))
        if not blind:
            model = (
                column.collaboration.collaboration.last if column.collaboration else column.model
            )
            continue_in_chat(reply.conversation_id, f"continue-{column.label}", model)


def stored_round(stored: StoredRound, revealed: bool) -> None:
    with st.chat_message("user"):
        safe_markdown(stored.prompt)
    places = st.columns(max(len(stored.entries), 1))
    for entry, place in zip(stored.entries, places, strict=False):
        with place:
            stored_entry(entry, stored.blind, revealed)
    if not stored.entries:
        st.warning(_("No model answered this round."))


def stored_entry(entry: StoredEntry, blind: bool, revealed: bool) -> None:
    run = entry.run
    st.subheader(answer_heading(entry.label, entry.entry, blind, revealed))
    if entry.thinking:
        if blind and not revealed:
            st.caption(_("Thinking hidden until the reveal: it often names the model."))
        else:
            seconds = run.metrics.thinking_ms / 1000 if run.metrics.thinking_ms else None
            with st.expander(thinking_label(seconds), expanded=False, icon=":material/psychology:"):
                safe_markdown(entry.thinking)
    safe_markdown(entry.text)
    if run.status == "error":
        failed = run.error or _("The reply failed.")
        st.error(with_log_reference(failed, run.request_id, run.id))
    name = run.model if revealed else _("Answer {label}").format(label=entry.label)
    st.caption(reply_caption(name, run.metrics, run.ttft_ms, run.status))
    if revealed and entry.steps:
        st.caption(collaboration_steps(entry.steps))
    if revealed:
        continue_in_chat(entry.conversation_id, f"continue-{entry.label}", run.model)
