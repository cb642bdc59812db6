"""Pulls on screen: their progress on the Models page and a small indicator in every sidebar.

The pulls themselves run in the background (chatcore/pulls.py), so clicking anything, or leaving
the page, never stops one; only its Cancel button does. What is shown is polled from memory by
fragments that rerun every second while a pull runs.
"""

from __future__ import annotations

import streamlit as st

from chatcore.errors import DashboardError
from chatcore.pulls import CANCELLED, DONE, PullView
from ui import components
from ui.formatting import layer_status, pull_job_status, short_host
from ui.i18n import _
from ui.safe_markdown import safe_label
from ui.session import models_changed, services

MINE = "pulls-mine"  # the ids of the pulls this session started and has not shown the end of
ENDED = "pulls-ended"  # those that ended since: their outcome is shown once on the Models page
POLL_SECONDS = 0.5
PULL_ERROR = "pull-error"  # a pull refused before it started, shown under the Pull button


def start_pull(host: str, name_key: str) -> None:
    """The Pull button: starts the pull in the background and remembers it for this session."""
    try:
        job = services().pulls.start(host, st.session_state.get(name_key, ""))
    except DashboardError as error:
        components.hold_error(PULL_ERROR, error)
        return
    mine = st.session_state.setdefault(MINE, [])
    if job.id not in mine:
        mine.append(job.id)


def cancel_pull(job_id: str) -> None:
    try:
        services().pulls.cancel(job_id)
    except DashboardError as error:
        components.hold_error(PULL_ERROR, error)


def pulls_section() -> None:
    """The Models page's pulls: each one running (from any session or the API) with its bars
    and Cancel button, and the outcome of this session's pulls that ended."""
    components.show_held_error(PULL_ERROR)
    for job in collect_ended():
        show_outcome(job)
    if services().pulls.running():
        live_pulls()


def collect_ended() -> list[PullView]:
    """This session's pulls that ended since the last look (each is shown once)."""
    ended: list[PullView] = []
    still: list[str] = []
    for job_id in st.session_state.get(MINE, []):
        try:
            job = services().pulls.get(job_id)
        except DashboardError:
            continue  # forgotten long ago
        if job.running:
            still.append(job_id)
        else:
            ended.append(job)
    st.session_state[MINE] = list(dict.fromkeys(still))
    if ended:
        models_changed()  # the pickers list the new model
    return ended


def show_outcome(job: PullView) -> None:
    if job.state == DONE:
        st.success(
            _("Pulled {model} onto {host}.").format(model=safe_label(job.model), host=job.host)
        )
    elif job.state == CANCELLED:
        st.info(_("Pull of {model} cancelled.").format(model=safe_label(job.model)))
    else:
        st.error(
            _("Pull of {model} failed: {error}").format(
                model=safe_label(job.model), error=safe_label(job.error or "")
            )
        )


@st.fragment(run_every=POLL_SECONDS)
def live_pulls() -> None:
    running = services().pulls.running()
    for job in running:
        st.progress(job.fraction, text=pull_job_status(job))
        for layer in job.layers:
            st.progress(
                layer.completed / layer.total if layer.total else 0.0,
                text=layer_status(layer),
            )
        st.button(
            _("Cancel pull"), key=f"cancel-pull-{job.id}", on_click=cancel_pull, args=(job.id,)
        )
    mine = set(st.session_state.get(MINE, []))
    if not running or mine - {job.id for job in running}:
        st.rerun()  # one ended: the whole page shows its outcome and lists the new model


def pull_indicator() -> None:
    """In every page's sidebar while a pull runs: which, and how far along."""
    if services().pulls.running():
        live_indicator()


@st.fragment(run_every=POLL_SECONDS * 4)
def live_indicator() -> None:
    running = services().pulls.running()
    for job in running:
        st.progress(
            job.fraction,
            text=_("Pulling {model} onto {host}: {share}").format(
                model=safe_label(job.model), host=short_host(job.host), share=f"{job.fraction:.0%}"
            ),
        )
    if not running:
        st.caption(_("Pulls finished: see the Models page."))
