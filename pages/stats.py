"""Stats: usage and performance of every reply, narrowed by dates, models, backends and hosts."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

import ui
from chatcore.stats import FilterChoices, StatsFilter, StatsReport
from ui import charts
from ui.formatting import (
    EMPTY_CELL,
    context_hit_columns,
    duration,
    per_model_columns,
    percent,
    stats_table,
    switch_columns,
)
from ui.i18n import N_, _
from ui.knowledge import show_usage

EMPTY_EXPLANATION = N_("""
Nothing to count yet: this page fills in as you chat. Every reply is measured, and here you
will find how much you used each model (conversations, messages, tokens, generation time, how
often replies failed or were stopped), how fast each one is (tokens per second, time to the
first token, load times), when you chat, how long the replies are, which prompts probably
overflowed the model's context window, and how much time went into loading models when you
switched between them.
""")

services = ui.services()


@st.cache_data(max_entries=16, show_spinner=False)
def cached_report(
    f: StatsFilter, choices: FilterChoices, version: tuple[object, ...], db: str
) -> StatsReport:
    """Reruns of an unchanged page reuse the figures; `version` changes with every new or
    finished run (and `db` with the database), so new replies always show."""
    return services.stats.report(f, choices)


def chosen_dates(choices: FilterChoices) -> tuple[date | None, date | None]:
    """A range left at every day grows with the runs; one the user narrowed stays as it is."""
    state, every_day = st.session_state, (choices.first_day, choices.last_day)
    if state.get("stats-every-day") != every_day:
        if tuple(state.get("stats-dates", ())) in ((), state.get("stats-every-day")):
            state["stats-dates"] = every_day
        state["stats-every-day"] = every_day
    picked = st.date_input(_("Dates"), key="stats-dates", format="YYYY-MM-DD")
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    if not days:
        return None, None
    return days[0], days[-1]  # while a range is being picked only its first day is set


def filters(choices: FilterChoices) -> StatsFilter:
    dates, models, backends, hosts, clients = st.columns([2, 3, 1, 2, 2])
    with dates:
        start, end = chosen_dates(choices)
    with models:
        picked_models = st.multiselect(_("Models"), choices.models, key="stats-models")
    with backends:
        picked_backends = st.multiselect(_("Backends"), choices.backends, key="stats-backends")
    with hosts:
        picked_hosts = st.multiselect(_("Hosts"), choices.hosts, key="stats-hosts")
    with clients:
        picked_clients = st.multiselect(
            _("Clients"),
            choices.clients,
            key="stats-clients",
            help=_(
                "Who sent the request: the dashboard, or a tool through its /ollama or /v1 proxy"
            ),
        )
    return StatsFilter(
        start,
        end,
        tuple(picked_models),
        tuple(picked_backends),
        tuple(picked_hosts),
        tuple(picked_clients),
    )


def show_table(frame: pd.DataFrame, columns: dict[str, object]) -> None:
    """A Stats table: counts without decimals, and an empty cell shown empty, not as "None"."""
    st.dataframe(stats_table(frame), hide_index=True, column_config=columns, placeholder=EMPTY_CELL)


def headline(figures: pd.Series) -> None:
    top = st.columns(4)
    top[0].metric(_("Conversations"), f"{int(figures['conversations']):,}")
    top[1].metric(_("Messages"), f"{int(figures['messages']):,}", help=_("Yours plus the replies."))
    top[2].metric(_("Prompt tokens"), f"{int(figures['prompt_tokens']):,}")
    top[3].metric(_("Completion tokens"), f"{int(figures['completion_tokens']):,}")
    bottom = st.columns(4)
    bottom[0].metric(_("Replies"), f"{int(figures['replies']):,}")
    bottom[1].metric(_("Generation time"), duration(figures["generation_seconds"]))
    bottom[2].metric(_("Error rate"), percent(figures["error_rate"]))
    bottom[3].metric(_("Stop rate"), percent(figures["stop_rate"]))


def per_model(table: pd.DataFrame) -> None:
    st.subheader(_("Models"))
    show_table(table, per_model_columns())
    st.caption(
        _(
            "Tokens/s is completion tokens over generation time, as the backend "
            "reports them: for a thinking model it includes the thinking tokens. "
            "Time to the first token (of any kind, thinking or answer) and time to "
            "the answer are the app's own clock; thinking tokens are the thinking "
            "pieces streamed. Load time is the backend's (a cold start is a slow "
            "one)."
        )
    )


def chart_or_note(chart: object, has_data: bool, note: str) -> None:
    if has_data:
        st.altair_chart(chart, width="stretch")
    else:
        st.caption(note)


def over_time(report: StatsReport) -> None:
    usage = report.usage_over_time
    left, right = st.columns(2)
    with left:
        st.subheader(_("Tokens per hour") if report.grain == "hour" else _("Tokens per day"))
        chart_or_note(
            charts.tokens_over_time(usage, report.grain),
            bool(usage["tokens"].sum()),
            _(
                "No tokens counted yet: every reply so far failed or stopped before it was "
                "measured."
            ),
        )
    with right:
        st.subheader(_("Speed over time"))
        chart_or_note(
            charts.speed_over_time(usage, report.grain),
            bool(usage["tokens_per_second"].notna().any()),
            _("No reply has reported its speed yet."),
        )


def habits(report: StatsReport) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader(_("When you chat"))
        st.altair_chart(charts.activity_heatmap(report.activity), width="stretch")
    with right:
        st.subheader(_("Reply lengths"))
        chart_or_note(
            charts.reply_length_histogram(report.reply_lengths),
            not report.reply_lengths.empty,
            _("No reply has reported its length in tokens yet."),
        )


def context_window(hits: pd.DataFrame) -> None:
    st.subheader(_("Prompts that probably overflowed the context window"))
    total = int(hits["total"].iloc[0]) if not hits.empty else 0
    st.caption(
        _(
            "A backend silently drops the oldest messages when a conversation "
            "outgrows the model's context window. Flagged: replies whose prompt "
            "reached the window in force (num_ctx; 4096 on Ollama unless set), or "
            "counted far fewer tokens than the app's estimate of its size (about 4 "
            "characters a token)."
        )
    )
    if not total:
        st.success(_("None found."), icon=":material/check:")
        return
    st.warning(
        _("{total:,} replies probably lost part of their conversation.").format(total=total),
        icon="✂️",
    )
    show_table(hits.drop(columns=["total"]), context_hit_columns())


def model_switches(switches: pd.DataFrame) -> None:
    st.subheader(_("Time lost switching models"))
    if switches.empty:
        st.caption(_("No model switches: each host kept answering with the same model."))
        return
    seconds = float(switches["load_seconds"].sum())
    st.metric(
        _("Load time after switching"),
        duration(seconds),
        help=_("Load time of replies whose host had last answered with another model."),
    )
    show_table(switches, switch_columns())


def downloads(f: StatsFilter) -> None:
    with st.container(horizontal=True):
        st.download_button(
            _("Runs as CSV"),
            data=lambda: services.stats.runs_csv(f),
            file_name="runs.csv",
            mime="text/csv",
            icon=":material/download:",
            on_click="ignore",
        )
        st.download_button(
            _("Runs as Parquet"),
            data=lambda: services.stats.runs_parquet(f),
            file_name="runs.parquet",
            mime="application/vnd.apache.parquet",
            icon=":material/download:",
            on_click="ignore",
        )


st.title(_("Stats"))
choices = services.stats.choices()
if choices.empty:
    st.info(_(EMPTY_EXPLANATION), icon=":material/monitoring:")
else:
    chosen = filters(choices)
    report = cached_report(
        chosen, choices, services.stats.version(), str(services.settings.db_path)
    )
    figures = report.headline.iloc[0]
    if not figures["replies"]:
        st.info(_("No replies match these filters."))
    else:
        headline(figures)
        per_model(report.per_model)
        over_time(report)
        habits(report)
        context_window(report.context_hits)
        model_switches(report.model_switches)
        show_usage(services.knowledge.usage(chosen))
        downloads(chosen)
