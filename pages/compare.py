"""Compare: one prompt to 2 to 4 models in side-by-side columns that stream at the same time,
a blind vote before the names are revealed, and a leaderboard from the user's own votes."""

import time

import streamlit as st

import ui
from chatcore.captions import reply_caption
from chatcore.compare import (
    MAX_MODELS,
    MIN_MODELS,
    Column,
    LiveRound,
    describe_vote,
    names_a_model,
    vote_choices,
)
from chatcore.errors import InvalidInput
from chatcore.storage.votes import StoredEntry, StoredRound

services = ui.services()
choice = ui.current_choice()
listing = ui.model_listing()
models = {m.name: m for m in listing.models if m.available}
CLOCK_SECONDS = 0.25


# --- one column: heading, answer, error and metrics caption ---


def heading(label: str, model: str, blind: bool, revealed: bool) -> str:
    if not blind:
        return model
    return f"{label} · {model}" if revealed else f"Answer {label}"


def show_live_round(live: LiveRound) -> None:
    """Stream every column at once; a stop or rerun stops them all (each stored as stopped)."""
    slots = []
    for column, place in zip(live.columns, st.columns(len(live.columns)), strict=True):
        with place:
            st.subheader(heading(column.label, column.model, live.blind, revealed=False))
            slots.append((st.empty(), st.empty()))
    ticked = 0.0
    try:
        for changed in live.updates():
            tick = time.monotonic() - ticked >= CLOCK_SECONDS
            ticked = time.monotonic() if tick else ticked
            for index, column in enumerate(live.columns):
                body, foot = slots[index]
                if index in changed:
                    body.markdown(column.text)
                if column.done and index in changed:
                    with foot.container():
                        show_outcome(column, live.blind)
                elif not column.done and tick:  # a ticking clock, which also lets a stop in
                    waiting = "streaming" if column.parts else "waiting for the first token"
                    foot.caption(f"{waiting} · {time.monotonic() - live.started:.1f} s")
    finally:
        live.stop()


def show_outcome(column: Column, blind: bool) -> None:
    if column.error_message:
        st.error(column.error_message)
    if (reply := column.reply) is not None:
        name = f"Answer {column.label}" if blind else column.model
        st.caption(reply_caption(name, reply.metrics, reply.ttft_ms, reply.status))
        if not blind:
            continue_button(column.label, reply.conversation_id, column.model)


def continue_button(label: str, conversation_id: str, model: str) -> None:
    st.button(
        "Continue in Chat",
        key=f"continue-{label}",
        icon=":material/chat:",
        on_click=continue_in_chat,
        args=(conversation_id, model),
    )


def show_stored_round(stored: StoredRound, revealed: bool) -> None:
    with st.chat_message("user"):
        st.markdown(stored.prompt)
    places = st.columns(max(len(stored.entries), 1))
    for entry, place in zip(stored.entries, places, strict=False):
        with place:
            show_entry(entry, stored.blind, revealed)
    if not stored.entries:
        st.warning("No model answered this round.")


def show_entry(entry: StoredEntry, blind: bool, revealed: bool) -> None:
    run = entry.run
    st.subheader(heading(entry.label, run.model, blind, revealed))
    st.markdown(entry.text)
    if run.status == "error":
        st.error(run.error or "The reply failed.")
    name = run.model if revealed else f"Answer {entry.label}"
    st.caption(reply_caption(name, run.metrics, run.ttft_ms, run.status))
    if revealed:
        continue_button(entry.label, entry.conversation_id, run.model)


def continue_in_chat(conversation_id: str, model: str) -> None:
    st.session_state.model = model
    st.session_state.compare_continue = conversation_id
    ui.open_conversation(conversation_id)


# --- the vote, the reveal and the leaderboard ---


def cast_vote(round_id: int, outcome: str, winner_label: str | None) -> None:
    try:
        services.compare.vote(round_id, outcome, winner_label)
    except InvalidInput as error:
        st.session_state.compare_vote_error = str(error)


def reveal(round_id: int) -> None:
    st.session_state.compare_revealed = round_id


def vote_or_verdict(stored: StoredRound, revealed: bool) -> None:
    labels = [entry.label for entry in stored.entries]
    if error := st.session_state.pop("compare_vote_error", None):
        st.error(error)
    if stored.vote is not None:
        names = ", ".join(f"{e.label} was {e.run.model}" for e in stored.entries)
        st.success(f"You voted: {describe_vote(stored.vote, labels)}. {names}.")
        return
    if len(labels) < MIN_MODELS or (revealed and stored.blind):
        return
    st.markdown("**Which answer is better?**" if len(labels) == 2 else "**Which is best?**")
    if stored.blind:
        warn_about_self_naming(stored)
    choices = vote_choices(labels)
    places = st.columns(len(choices) + stored.blind)
    for option, place in zip(choices, places, strict=False):
        place.button(
            option.text,
            key=f"vote-{option.outcome}-{option.winner_label or ''}",
            width="stretch",
            on_click=cast_vote,
            args=(stored.id, option.outcome, option.winner_label),
        )
    if stored.blind:
        places[-1].button(
            "Reveal without voting",
            key="reveal",
            width="stretch",
            on_click=reveal,
            args=(stored.id,),
        )


def warn_about_self_naming(stored: StoredRound) -> None:
    models = [entry.run.model for entry in stored.entries]
    for entry in stored.entries:
        if name := names_a_model(entry.text, models):
            warning = f"Answer {entry.label} mentions “{name}”: this vote may not be blind."
            st.caption(f":material/visibility: {warning}")


def leaderboard() -> None:
    st.divider()
    st.subheader("Your leaderboard")
    blind_only = st.toggle("Blind votes only", key="leaderboard_blind_only")
    board = services.compare.leaderboard(blind_only)
    if board.empty:
        st.caption("No votes yet. Compare a few models blind and vote: the ratings start here.")
        return
    st.dataframe(
        board,
        hide_index=True,
        column_config={"Win rate": st.column_config.NumberColumn(format="percent")},
    )
    st.caption(
        "Rating: Elo from 1000 (K 32), replayed in the order you voted. Win rate: the share of a "
        "model's votes that judged it best. With 3 or 4 answers you pick the best one, which beats "
        "each of the others; a tie or 'all bad' is a draw between every pair. Votes: how many "
        "votes each figure rests on."
    )


# --- the screen ---

if conversation_id := st.session_state.pop("compare_continue", None):
    st.switch_page("pages/chat.py", query_params={"c": conversation_id})

st.title("Compare")
picked = st.multiselect(
    f"Models ({MIN_MODELS} to {MAX_MODELS})",
    options=list(models),
    default=list(models)[:MIN_MODELS],
    format_func=lambda name: models[name].label,
    max_selections=MAX_MODELS,
    key="compare_models",
)
blind = st.toggle(
    "Blind: label the answers A, B, … and hide the names until you vote", True, key="compare_blind"
)
st.caption("Temperature, top p, max tokens and the system prompt come from the sidebar.")
prompt = st.chat_input(
    "One prompt for every model", submit_mode="stop", disabled=len(picked) < MIN_MODELS
)

streamed = None
if prompt:
    try:
        live = services.compare.start(prompt, picked, choice.params, blind)
    except InvalidInput as error:
        ui.show_refusal(error, unsent=prompt)
    else:
        st.session_state.compare_round = streamed = live.id
        with st.chat_message("user"):
            st.markdown(prompt)
        show_live_round(live)

round_id = st.session_state.get("compare_round")
stored = services.compare.round(round_id) if round_id is not None else None
if stored is not None:
    revealed = (
        not stored.blind
        or stored.vote is not None
        or st.session_state.get("compare_revealed") == stored.id
    )
    if stored.id != streamed:
        show_stored_round(stored, revealed)
    vote_or_verdict(stored, revealed)

leaderboard()
