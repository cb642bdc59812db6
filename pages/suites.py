"""Suites: a named list of prompts run against several models and presets, streaming into a
live matrix; blind votes on pairs of answers; a Bradley-Terry leaderboard with speed beside it."""

import streamlit as st

import ui
from chatcore.errors import DashboardError
from chatcore.suites import (
    DEFAULT_RUBRIC,
    DEFAULT_SEED,
    MAX_PRESETS,
    SuiteRunView,
    prompts_from_csv,
    prompts_from_jsonl,
    prompts_from_lines,
)
from ui import components
from ui import suites as parts
from ui.formatting import model_label
from ui.i18n import _
from ui.safe_markdown import safe_markdown

services = ui.services()
suites = services.suites
choice = ui.current_choice()
listing = ui.model_listing()
models = {m.name: m for m in listing.models if m.available}


# --- a new suite ---


def read_prompts(typed: str, upload: object | None) -> list:
    if upload is None:
        return prompts_from_lines(typed)
    text = upload.getvalue().decode("utf-8-sig")  # type: ignore[attr-defined]
    if upload.name.lower().endswith((".jsonl", ".json")):  # type: ignore[attr-defined]
        return prompts_from_jsonl(text)
    return prompts_from_csv(text)


def new_suite() -> None:
    with st.expander(_("New suite"), expanded=not suites.suites()), st.form("new_suite"):
        name = st.text_input(_("Name"), key="suite_name")
        typed = st.text_area(_("Prompts, one per line"), key="suite_prompts", height=150)
        upload = st.file_uploader(
            _("…or import a CSV (a `prompt` column, optional `category` and `reference`) or JSONL"),
            type=["csv", "jsonl", "json", "txt"],
            key="suite_upload",
            max_upload_size=200,  # Streamlit's default; the server's own is raised for imports
        )
        if st.form_submit_button(_("Create suite")):
            try:
                st.session_state.suite_id = suites.create_suite(name, read_prompts(typed, upload))
            except DashboardError as error:
                components.show_error(error)


# --- a run ---


def start_run(suite_id: int) -> None:
    picked = st.multiselect(
        _("Models"),
        options=list(models),
        default=list(models)[:2],
        format_func=lambda name: model_label(models[name]),
        key="suite_models",
    )
    together = st.text_area(
        _("Models working together, one per line, ranked like a model"),
        placeholder=_(
            "critique(drafter -> critic -> reviser)\nfusion(model + model -> synthesiser)"
        ),
        key="suite_collaborations",
        height=68,
    )
    picked = picked + [line.strip() for line in together.splitlines() if line.strip()]
    left, right = st.columns(2)
    temperatures = left.text_input(
        _("Temperatures (one preset each, up to {MAX_PRESETS})").format(MAX_PRESETS=MAX_PRESETS),
        value=f"{choice.params.temperature:g}",
        key="suite_temperatures",
    )
    seed = right.number_input(_("Seed"), value=DEFAULT_SEED, step=1, key="suite_seed")
    st.caption(_("Top p, max tokens and the system prompt come from the sidebar."))
    if st.button(_("Run the suite"), disabled=not picked, type="primary", key="suite_start"):
        try:
            presets = [
                choice.params.model_copy(update={"temperature": float(t), "seed": int(seed)})
                for t in temperatures.replace(";", ",").split(",")
                if t.strip()
            ]
            st.session_state.suite_run = suites.start_run(suite_id, picked, presets=presets)
        except DashboardError as error:
            components.show_error(error)
        except ValueError as error:  # a temperature that is not a number, or out of range
            components.show_error(DashboardError(_("Temperatures: {error}").format(error=error)))


def live_matrix(run_id: int) -> None:
    """Redrawn every second while the run goes; the whole page once it ends."""
    view = suites.run(run_id)
    st.caption(parts.run_progress(view))
    st.dataframe(parts.matrix_table(view), hide_index=True, key=f"matrix-{run_id}")
    if view.state != "running" and st.session_state.get("suite_was_running") == run_id:
        st.session_state.suite_was_running = None
        st.rerun(scope="app")
    if view.state == "running":
        st.session_state.suite_was_running = run_id


def run_controls(view: SuiteRunView) -> None:
    if view.state == "running":
        if st.button(_("Stop"), key="suite_stop"):
            suites.stop(view.id)
            st.rerun()
        return
    missing = [c for c in view.cells if c.status != "complete"]
    if missing and st.button(
        _("Resume: run the {count_missing} cells without an answer").format(
            count_missing=len(missing)
        ),
        key="resume",
    ):
        suites.rerun(view.id)
        st.rerun()
    chosen = st.multiselect(
        _("Run chosen cells again"),
        options=range(len(view.cells)),
        format_func=lambda i: parts.cell_label(view.cells[i], view),
        key="suite_rerun_cells",
    )
    if chosen and st.button(_("Run them again"), key="suite_rerun"):
        cells = [view.cells[i] for i in chosen]
        suites.rerun(view.id, [(c.prompt_index, c.model, c.preset_index) for c in cells])
        st.rerun()


def cell_reader(view: SuiteRunView) -> None:
    index = st.selectbox(
        _("Read an answer"),
        options=range(len(view.cells)),
        format_func=lambda i: parts.cell_label(view.cells[i], view),
        key="suite_cell",
    )
    if index is not None:
        parts.show_cell(view.cells[index], view)


def blind_vote(view: SuiteRunView) -> None:
    st.subheader(_("Vote blind"))
    pair = suites.next_pair(view.id)
    if pair is None:
        st.caption(_("No pair of answers left to vote on in this run."))
        return
    a, b = pair
    with st.chat_message("user"):
        safe_markdown(view.suite.prompts[a.prompt_index].prompt)
    left, right = st.columns(2)
    with left:
        parts.blind_answer("A", a)
    with right:
        parts.blind_answer("B", b)
    for (outcome, text), place in zip(parts.VOTE_BUTTONS, st.columns(4), strict=True):
        if place.button(_(text), key=f"suite-vote-{outcome}", width="stretch"):
            try:
                suites.vote(a.run_id or 0, b.run_id or 0, outcome)
            except DashboardError as error:
                components.show_error(error)
            else:
                st.session_state.suite_last_vote = _("A was {a}, B was {b}.").format(
                    a=a.model, b=b.model
                )
                st.rerun()


def judge(view: SuiteRunView) -> None:
    st.subheader(_("Judge model"))
    rubric = st.text_area(
        _("Rubric (shown to the judge with every pair)"), DEFAULT_RUBRIC, key="rubric"
    )
    left, right = st.columns([2, 1])
    model = left.selectbox(
        _("Judge"), list(models), format_func=lambda n: model_label(models[n]), key="judge"
    )
    right.caption(_(parts.JUDGE_NOTE))
    if model and st.button(_("Let the judge decide every pair"), key="judge_start"):
        try:
            suites.start_judging(view.id, model, rubric)
        except DashboardError as error:
            components.show_error(error)
        else:
            st.success(_("The judge is at work; its verdicts join the leaderboard as they come."))
    same, pairs = suites.judge_agreement()
    st.caption(parts.agreement_text(same, pairs))


def leaderboard(suite_id: int) -> None:
    st.subheader(_("Leaderboard"))
    one, two, three, four = st.columns(4)
    source = one.radio(
        _("Votes"), ["human", "judge", "both"], index=2, key="board_source", horizontal=True
    )
    category = two.selectbox(_("Category"), [None, *suites.categories()], key="board_category")
    only_suite = three.toggle(_("This suite only"), key="board_suite")
    length = four.toggle(_("Control for answer length"), key="board_length")
    under = st.number_input(
        _("Only models answering in at most (s, 0: any)"), 0.0, step=0.5, key="board_under"
    )
    board = suites.leaderboard(
        source, category, suite_id if only_suite else None, length_controlled=length
    )
    if not board.rows:
        st.caption(_("No votes yet: vote on a few pairs above and the ratings start here."))
        return
    st.dataframe(
        parts.leaderboard_table(board, under or None),
        hide_index=True,
        column_config=parts.leaderboard_columns(),
    )
    st.caption(_(parts.LEADERBOARD_NOTE))


# --- the screen ---

st.title(_("Suites"))
new_suite()
listed = suites.suites()
if not listed:
    st.info(_("Create a suite: a list of prompts to replay against several models."))
    st.stop()
ids = [s.id for s in listed]
names = {s.id: _("{name} ({count} prompts)").format(name=s.name, count=s.prompts) for s in listed}
current = st.session_state.get("suite_id")
suite_id = st.selectbox(
    _("Suite"), ids, index=ids.index(current) if current in ids else 0, format_func=names.get
)
st.session_state.suite_id = suite_id
start_run(suite_id)

runs = suites.runs(suite_id)
if runs:
    run_ids = [r.id for r in runs]
    wanted = st.session_state.get("suite_run")
    run_id = st.selectbox(
        _("Run"),
        run_ids,
        index=run_ids.index(wanted) if wanted in run_ids else 0,
        format_func=lambda i: _("Run {id} · {models}").format(
            id=i, models=", ".join(next(r for r in runs if r.id == i).models)
        ),
    )
    st.session_state.suite_run = run_id
    view = suites.run(run_id)
    running = view.state == "running"
    st.fragment(live_matrix, run_every=parts.MATRIX_REFRESH_SECONDS if running else None)(run_id)
    run_controls(view)
    if not running:
        cell_reader(view)
        if note := st.session_state.pop("suite_last_vote", None):
            st.success(_("Vote stored. {note}").format(note=note))
        blind_vote(view)
        judge(view)
leaderboard(suite_id)
