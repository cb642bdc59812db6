"""The Stats page's service: every figure for a filter from one snapshot, and the downloads.

The SQL lives in chatcore/storage/stats.py; this module decides which queries make a report.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

import pandas as pd

from chatcore.storage.db import Database
from chatcore.storage.rollup import queued
from chatcore.storage.runs import summarise_finished
from chatcore.storage.stats import (
    HOURLY_UP_TO_DAYS,
    FilterChoices,
    StatsFilter,
    context_hits,
    data_version,
    filter_choices,
    filtered_runs,
    local_clock,
    model_switches,
    per_model,
    reply_lengths,
    run_days,
    totals,
    usage,
)

__all__ = [
    "BackgroundSummaries",
    "FilterChoices",
    "StatsFilter",
    "StatsReport",
    "StatsService",
    "summarise_now",
]

log = logging.getLogger(__name__)


def summarise_now(db: Database) -> None:
    """Add the runs finished since the last time to the Stats summaries (finish_run only queues
    them): called before Stats reads, so its figures always count every finished run."""
    with db.cursor() as cur:
        if not queued(cur):
            return
    with db.summaries_transaction() as cur:
        summarise_finished(cur)


# Summaries wait for a pause this long in the sends (at most DELAY_SECONDS): their statements
# would take turns with a send's at the interpreter's lock, in a burst of sends (an agent through
# the proxy, a suite). They take no lock a send takes.
PAUSE_SECONDS = 0.5
DELAY_SECONDS = 5.0
# Runs added per transaction: those of a burst share their rollup's recompute (rollup.Recomputes);
# a few, so that a close waits for little.
RUNS_PER_TRANSACTION = 16


class BackgroundSummaries:
    """Adds each stored reply to the Stats summaries on a thread of its own, in a pause between
    sends, a few runs per transaction, beside the sends' transactions. A failure leaves the runs
    queued for the next time (Stats' next read, which adds what is queued first, or the next
    start)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._due = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def reply_stored(self) -> None:
        """A reply's outcome is stored: its run waits in the queue, for a pause after it."""
        self._db.turns.reply_ended()
        self._due.set()
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="stats-summaries", daemon=True
                )
                self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop (what is queued stays queued); waits for a run being added."""
        with self._start_lock:
            self._closed = True
            thread = self._thread
        self._due.set()
        self._db.turns.poke()
        if thread is not None:
            thread.join(timeout)

    def _is_closed(self) -> bool:
        return self._closed

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closed:
                return
            self._due.clear()
            self._add_queued_runs()

    def _add_queued_runs(self) -> None:
        try:
            self._db.turns.wait_for_a_pause(PAUSE_SECONDS, DELAY_SECONDS, self._is_closed)
            while not self._closed and not self._db.closed:
                with self._db.summaries_transaction(yielding=True) as cur:
                    if not summarise_finished(cur, at_most=RUNS_PER_TRANSACTION):
                        return
        except Exception:  # the database closing under it, say: the queue keeps the runs
            if not self._db.closed:
                log.warning("Stats summaries not updated yet", exc_info=True)


KEPT_REPORTS = 8  # reports remembered per data version (a few filters the user goes between)


@dataclass(frozen=True)
class StatsReport:
    """Everything the Stats page shows, for one filter."""

    headline: pd.DataFrame
    per_model: pd.DataFrame
    usage_over_time: pd.DataFrame
    activity: pd.DataFrame
    reply_lengths: pd.DataFrame
    context_hits: pd.DataFrame
    model_switches: pd.DataFrame
    grain: str  # the periods of usage_over_time: "hour" or "day"


def time_grain(f: StatsFilter, choices: FilterChoices) -> str:
    """Hours for a span of up to three days, days beyond."""
    start = f.start or choices.first_day
    end = f.end or choices.last_day
    if start is None or end is None:
        return "day"
    return "hour" if (end - start).days < HOURLY_UP_TO_DAYS else "day"


def headline(totals_row: pd.DataFrame, usage: pd.DataFrame) -> pd.DataFrame:
    """One row: the page's top figures from `totals` and the usage over time. The rates are shares
    of the matching runs, None when no run matches."""
    runs = int(usage["runs"].sum())
    figures = {
        "conversations": int(totals_row["conversations"].iloc[0]),
        "messages": int(totals_row["messages"].iloc[0]),
        "replies": runs,
        "prompt_tokens": int(usage["prompt_tokens"].sum()),
        "completion_tokens": int(usage["completion_tokens"].sum()),
        "generation_seconds": float(usage["generation_seconds"].sum()),
        "error_rate": int(usage["errors"].sum()) / runs if runs else None,
        "stop_rate": int(usage["stopped"].sum()) / runs if runs else None,
    }
    return pd.DataFrame([figures])


# --- the service the page calls ---


class StatsService:
    """Reports are remembered until a run is added or finishes (the data version moves), so the
    page's first visit finds the default report made by `warm_up` at start."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._choices: tuple[tuple[object, ...], FilterChoices] | None = None
        self._reports: dict[tuple[str, str, tuple[object, ...]], StatsReport] = {}

    def choices(self) -> FilterChoices:
        version = self.version()  # (the finished runs are in the summaries from here on)
        with self._lock:
            if self._choices is not None and self._choices[0] == version:
                return self._choices[1]
        with self.db.cursor() as cur:
            choices = filter_choices(cur)
        with self._lock:
            self._choices = (version, choices)
        return choices

    def version(self) -> tuple[object, ...]:
        summarise_now(self.db)
        with self.db.cursor() as cur:
            return data_version(cur)

    def default_filter(self, choices: FilterChoices) -> StatsFilter:
        """What the page shows before the user narrows it: every day, every value."""
        return StatsFilter(choices.first_day, choices.last_day)

    def warm_up(self) -> None:
        """Make the report the page opens with, so its first visit only reads it."""
        choices = self.choices()
        if not choices.empty:
            self.report(self.default_filter(choices), choices)

    def report(self, f: StatsFilter, choices: FilterChoices) -> StatsReport:
        """All of the page's figures from one consistent snapshot (one read transaction)."""
        key = (repr(f), repr(choices), self.version())
        with self._lock:
            if (kept := self._reports.get(key)) is not None:
                return kept
        made = self._make_report(f, choices)
        with self._lock:
            self._reports = {k: v for k, v in self._reports.items() if k[2] == key[2]}
            if len(self._reports) >= KEPT_REPORTS:
                self._reports.pop(next(iter(self._reports)))
            self._reports[key] = made
        return made

    def _make_report(self, f: StatsFilter, choices: FilterChoices) -> StatsReport:
        grain = time_grain(f, choices)
        with self.db.transaction() as cur:
            clock = local_clock(cur)
            runs = f.within(*run_days(cur))  # the same runs, read from fewer summary rows
            over_time, by_hour = usage(cur, runs, clock, grain)
            return StatsReport(
                headline=headline(totals(cur, runs, messages=f), over_time),
                per_model=per_model(cur, runs),
                usage_over_time=over_time,
                activity=by_hour,
                reply_lengths=reply_lengths(cur, runs),
                context_hits=context_hits(cur, runs),
                model_switches=model_switches(cur, runs),
                grain=grain,
            )

    def runs_csv(self, f: StatsFilter) -> bytes:
        with self.db.cursor() as cur:
            return filtered_runs(cur, f).to_csv(index=False).encode()

    def runs_parquet(self, f: StatsFilter) -> bytes:
        with self.db.cursor() as cur:
            frame = filtered_runs(cur, f)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
