"""The Stats page's service: every figure for a filter from one snapshot, and the downloads.

The SQL lives in chatcore/storage/stats.py; this module decides which queries make a report.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from chatcore.storage.db import Database
from chatcore.storage.stats import (
    HOURLY_UP_TO_DAYS,
    FilterChoices,
    StatsFilter,
    SwitchLog,
    context_hits,
    data_version,
    filter_choices,
    filtered_runs,
    local_clock,
    model_switches,
    per_model,
    reply_lengths,
    totals,
    usage,
)

__all__ = ["FilterChoices", "StatsFilter", "StatsReport", "StatsService"]


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
    def __init__(self, db: Database) -> None:
        self.db = db
        self.switches = SwitchLog()

    def choices(self) -> FilterChoices:
        with self.db.cursor() as cur:
            return filter_choices(cur)

    def version(self) -> tuple[object, ...]:
        with self.db.cursor() as cur:
            return data_version(cur)

    def report(self, f: StatsFilter, choices: FilterChoices) -> StatsReport:
        """All of the page's figures from one consistent snapshot (one read transaction)."""
        grain = time_grain(f, choices)
        with self.db.transaction() as cur:
            clock = local_clock(cur)
            over_time, by_hour = usage(cur, f, clock, grain)
            return StatsReport(
                headline=headline(totals(cur, f), over_time),
                per_model=per_model(cur, f),
                usage_over_time=over_time,
                activity=by_hour,
                reply_lengths=reply_lengths(cur, f),
                context_hits=context_hits(cur, f),
                model_switches=model_switches(cur, f, self.switches.switch_ids(cur)),
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
