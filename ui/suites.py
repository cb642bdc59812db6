"""The Suites page's pieces: the live matrix (prompt × model), a cell's answer, the blind pair
vote and the leaderboard table with its intervals, ranks and speed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import streamlit as st

from chatcore.params import GenerationParams
from chatcore.suites import Cell, Leaderboard, SuiteRunView
from ui.formatting import reply_caption
from ui.i18n import N_, _
from ui.safe_markdown import safe_markdown

MATRIX_REFRESH_SECONDS = 1.0
SNIPPET_CHARS = 80
STATE_TEXT = {"running": N_("running"), "done": N_("finished"), "stopped": N_("stopped")}
STATUS_MARK = {"waiting": "…", "streaming": "▸", "complete": "", "stopped": "■", "error": "⚠"}
# The blind vote's buttons: (outcome, text)
VOTE_BUTTONS = (
    ("a", N_("A is better")),
    ("b", N_("B is better")),
    ("tie", N_("Tie")),
    ("both_bad", N_("Both are bad")),
)


def preset_label(params: GenerationParams) -> str:
    return _("t {temperature} · top p {top_p} · seed {seed}").format(
        temperature=f"{params.temperature:g}", top_p=f"{params.top_p:g}", seed=params.seed
    )


def column_name(model: str, preset_index: int, view: SuiteRunView) -> str:
    if len(view.presets) == 1:
        return model
    return f"{model} [{preset_label(view.presets[preset_index])}]"


def cell_summary(cell: Cell) -> str:
    """A matrix cell: the answer's start, then its speed and time to the first token."""
    if cell.status == "waiting":
        return "… " + _("waiting")
    if cell.status == "error" and not cell.text:
        return f"⚠ {cell.error or _('failed')}"
    text = " ".join(cell.text.split())
    snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
    figures = []
    if (speed := cell.metrics.tokens_per_second) is not None:
        figures.append(f"{speed:.0f} tok/s")
    if cell.ttft_ms is not None:
        figures.append(_("first {seconds} s").format(seconds=f"{cell.ttft_ms / 1000:.2f}"))
    mark = STATUS_MARK.get(cell.status, "")
    return " ".join(
        part for part in (mark, snippet, f"({', '.join(figures)})" if figures else "") if part
    )


def matrix_table(view: SuiteRunView) -> pd.DataFrame:
    """One row per prompt, one column per model (and preset)."""
    rows: dict[int, dict[str, str]] = {}
    for cell in view.cells:
        row = rows.setdefault(
            cell.prompt_index, {_("Prompt"): view.suite.prompts[cell.prompt_index].prompt}
        )
        row[column_name(cell.model, cell.preset_index, view)] = cell_summary(cell)
    return pd.DataFrame([rows[i] for i in sorted(rows)])


def run_progress(view: SuiteRunView) -> str:
    finished = sum(c.status in ("complete", "error", "stopped") for c in view.cells)
    state = _(STATE_TEXT[view.state]) if view.state in STATE_TEXT else view.state
    answered = _("{finished} of {total} cells answered").format(
        finished=finished, total=len(view.cells)
    )
    return f"{state} · {answered}"


def cell_label(cell: Cell, view: SuiteRunView) -> str:
    prompt = " ".join(view.suite.prompts[cell.prompt_index].prompt.split())[:40]
    return f"#{cell.prompt_index + 1} {prompt} → {column_name(cell.model, cell.preset_index, view)}"


def show_cell(cell: Cell, view: SuiteRunView) -> None:
    """A cell's whole answer as Markdown (never raw HTML), with its caption."""
    suite_prompt = view.suite.prompts[cell.prompt_index]
    with st.chat_message("user"):
        safe_markdown(suite_prompt.prompt)
    with st.chat_message("assistant"):
        safe_markdown(cell.text or _("*(no text)*"))
        if cell.error:
            st.error(cell.error)
        st.caption(reply_caption(cell.model, cell.metrics, cell.ttft_ms, cell.status))
    if suite_prompt.reference:
        st.caption(_("Reference answer:"))
        safe_markdown(suite_prompt.reference)


def blind_answer(label: str, cell: Cell) -> None:
    st.subheader(_("Answer {label}").format(label=label))
    safe_markdown(cell.text)


def leaderboard_columns() -> dict[str, object]:
    """The frame keeps English keys (tests and scripts read them); the headers are translated."""
    text = st.column_config.TextColumn
    number = st.column_config.NumberColumn
    return {
        "Rank": text(_("Rank")),
        "Model": text(_("Model")),
        "Rating": number(_("Rating")),
        "95% interval": text(_("Interval (95%)")),
        "Votes": number(_("Votes")),
        "Elo (online)": number(_("Elo (online)")),
        "Median tok/s": number(_("Median tok/s"), format="%.1f"),
        "Median time (s)": number(_("Median time (s)"), format="%.2f"),
    }


def leaderboard_table(board: Leaderboard, under_seconds: float | None = None) -> pd.DataFrame:
    """Bradley-Terry rating with its 95% interval and rank range, Elo beside it, and speed;
    with `under_seconds`, only the models whose median answer takes at most that long."""
    rows = [
        {
            "Rank": str(r.rank_best)
            if r.rank_best == r.rank_worst
            else f"{r.rank_best}–{r.rank_worst}",
            "Model": r.model,
            "Rating": round(r.rating),
            "95% interval": _("{low} to {high}").format(
                low=f"{r.ci_low:.0f}", high=f"{r.ci_high:.0f}"
            ),
            "Votes": r.votes,
            "Elo (online)": round(r.elo),
            "Median tok/s": r.median_tokens_per_second,
            "Median time (s)": r.median_seconds,
        }
        for r in board.rows
        if under_seconds is None
        or (r.median_seconds is not None and r.median_seconds <= under_seconds)
    ]
    columns = [
        "Rank",
        "Model",
        "Rating",
        "95% interval",
        "Votes",
        "Elo (online)",
        "Median tok/s",
        "Median time (s)",
    ]
    return pd.DataFrame(rows, columns=columns)


LEADERBOARD_NOTE = N_(
    "Rating: Bradley-Terry fitted by maximum likelihood over every pairwise outcome (a tie or "
    "'both bad' counts half to each), on the Elo scale (1000 is the average model; 400 points "
    "mean 10 to 1 odds). The interval is the middle 95 percent of 1,000 refits on votes redrawn "
    "with replacement; models whose intervals overlap share a rank range. Elo (online) replays the "
    "same votes in the order they came, for comparison: it changes with that order. Speed: "
    "medians over the rated answers."
)


JUDGE_NOTE = N_(
    "Each pair is judged twice with the answers swapped; a verdict counts only when both orders "
    "agree. Judge verdicts are kept apart from your votes: pick the source on the leaderboard."
)


def agreement_text(same: int, pairs: int) -> str:
    if not pairs:
        return _("Judge and human agreement: no pair has both a vote and an agreed verdict yet.")
    return _("Judge and human agree on {same} of {pairs} pairs ({share}).").format(
        same=same, pairs=pairs, share=f"{same / pairs:.0%}"
    )


def start_of(day: date | None) -> datetime | None:
    """A picked day as the moment it began (UTC), for the leaderboard's date filter."""
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
