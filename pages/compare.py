"""Compare: one prompt to 2 to 4 models in side-by-side columns that stream at the same time,
a blind vote before the names are revealed, and a leaderboard from the user's own votes."""

import streamlit as st

import ui
from chatcore.compare import (
    MAX_MODELS,
    MIN_MODELS,
    StoredRound,
    describe_vote,
    names_a_model,
    votable,
    vote_choices,
)
from chatcore.errors import DashboardError
from ui import collaboration, components
from ui.formatting import leaderboard_columns, leaderboard_table, picker_label, vote_label
from ui.i18n import N_, _
from ui.messages import show_refusal
from ui.safe_markdown import safe_markdown

services = ui.services()
choice = ui.current_choice()
listing = ui.model_listing()
models = {m.name: m for m in listing.models if m.available}


NOTHING_TO_VOTE_ON = N_(
    "Fewer than two answers finished without failing: there is nothing to vote on."
)

# --- the vote, the reveal and the leaderboard ---


def cast_vote(round_id: int, outcome: str, winner_label: str | None) -> None:
    try:
        services.compare.vote(round_id, outcome, winner_label)
    except DashboardError as error:
        components.hold_error("compare_vote_error", error)


def reveal(round_id: int) -> None:
    st.session_state.compare_revealed = round_id


def vote_or_verdict(stored: StoredRound, revealed: bool) -> None:
    labels = [entry.label for entry in votable(stored)]  # a failed answer takes no part
    components.show_held_error("compare_vote_error")
    if stored.vote is not None:
        names = ", ".join(
            _("{label} was {model}").format(label=e.label, model=e.entry) for e in stored.entries
        )
        said = next(
            (c for c in vote_choices(labels)
             if (c.outcome, c.winner_label) == (stored.vote.outcome, stored.vote.winner_label)),
            None,
        )  # fmt: skip
        verdict = vote_label(said, len(labels)) if said else describe_vote(stored.vote, labels)
        st.success(_("You voted: {vote}. {names}.").format(vote=verdict, names=names))
        return
    if len(labels) < MIN_MODELS:
        st.caption(_(NOTHING_TO_VOTE_ON))
        return
    if revealed and stored.blind:
        return
    st.markdown(_("**Which answer is better?**") if len(labels) == 2 else _("**Which is best?**"))
    if stored.blind:
        warn_about_self_naming(stored)
    choices = vote_choices(labels)
    places = st.columns(len(choices) + stored.blind)
    for option, place in zip(choices, places, strict=False):
        place.button(
            vote_label(option, len(labels)),
            key=f"vote-{option.outcome}-{option.winner_label or ''}",
            width="stretch",
            on_click=cast_vote,
            args=(stored.id, option.outcome, option.winner_label),
        )
    if stored.blind:
        places[-1].button(
            _("Reveal without voting"),
            key="reveal",
            width="stretch",
            on_click=reveal,
            args=(stored.id,),
        )


def warn_about_self_naming(stored: StoredRound) -> None:
    models = [m for e in stored.entries for m in ([m for _, m in e.steps] or [e.run.model])]
    for entry in stored.entries:
        if name := names_a_model(entry.text, models):
            warning = _("Answer {label} mentions “{name}”: this vote may not be blind.").format(
                label=entry.label, name=name
            )
            st.caption(_(":material/visibility: {warning}").format(warning=warning))


def leaderboard() -> None:
    st.divider()
    st.subheader(_("Your leaderboard"))
    blind_only = st.toggle(_("Blind votes only"), key="leaderboard_blind_only")
    standings = services.compare.standings(blind_only)
    if not standings:
        st.caption(_("No votes yet. Compare a few models blind and vote: the ratings start here."))
        return
    st.dataframe(leaderboard_table(standings), hide_index=True, column_config=leaderboard_columns())
    st.caption(
        _(
            "Rating: Elo from 1000 (K 32), replayed in the order you voted. Win "
            "rate: the share of a model's votes that judged it best. With 3 or 4 "
            "answers you pick the best one, which beats each of the others; a tie "
            "or 'all bad' is a draw between every pair. Votes: how many votes each "
            "figure rests on."
        )
    )


# --- the round on screen, kept in the address so a reload or a link brings it back ---


def show_round(round_id: int) -> None:
    st.session_state.compare_round = round_id
    st.query_params["round"] = str(round_id)


def shown_round() -> int | None:
    in_url = st.query_params.get("round", "")
    if in_url.isdigit():
        st.session_state.compare_round = int(in_url)
    return st.session_state.get("compare_round")


def why_no_prompt(available: int, picked: int) -> str | None:
    if available < MIN_MODELS:
        needed = _("Compare needs at least {count} models that answer;").format(count=MIN_MODELS)
        have = _("only one is available.") if available == 1 else _("none is available.")
        hint = _("Start Ollama or pull another model (the Models page), then refresh.")
        return f"{needed} {have} {hint}"
    if picked < MIN_MODELS:
        return _("Pick at least {count} models above to send a prompt.").format(count=MIN_MODELS)
    return None


# --- the screen ---

components.follow_continue_in_chat()
components.wait_for_the_last_stream()  # a round stopped mid-stream is stored before it is shown


def entry_label(name: str) -> str:
    """A model by its picker label; models working together by their name."""
    return picker_label(models[name]) if name in models else name


st.title(_("Compare"))
picked = st.multiselect(
    _("Models ({least} to {most})").format(least=MIN_MODELS, most=MAX_MODELS),
    options=list(models) + collaboration.built(),
    default=None if "compare_models" in st.session_state else list(models)[:MIN_MODELS],
    format_func=entry_label,
    max_selections=MAX_MODELS,
    key="compare_models",
)
collaboration.builder(list(models), entry_label, "compare_models", MAX_MODELS)
blind = st.toggle(
    _("Blind: label the answers A, B, … and hide the names until you vote"),
    True,
    key="compare_blind",
)
st.caption(_("Temperature, top p, max tokens and the system prompt come from the sidebar."))
if reason := why_no_prompt(len(models), len(picked)):
    st.info(reason, icon=":material/info:")
prompt = st.chat_input(
    _("One prompt for every model"), submit_mode="stop", disabled=len(picked) < MIN_MODELS
)

streamed = None
if prompt:
    try:
        live = services.compare.start(prompt, picked, choice.params, blind)
    except DashboardError as error:
        show_refusal(error, unsent=prompt)
    else:
        show_round(streamed := live.id)  # before streaming: a stop ends the run
        with st.chat_message("user"):
            safe_markdown(prompt)
        components.live_round(live)
        st.rerun()  # the finished round, with its vote

round_id = shown_round()
stored = services.compare.round(round_id) if round_id is not None else None
if stored is not None:
    revealed = (
        not stored.blind
        or stored.vote is not None
        or st.session_state.get("compare_revealed") == stored.id
    )
    if stored.id != streamed:
        components.stored_round(stored, revealed)
    vote_or_verdict(stored, revealed)

leaderboard()
