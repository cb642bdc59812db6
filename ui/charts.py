"""The Stats page's Altair charts, drawn from the frames chatcore.stats returns."""

from __future__ import annotations

import altair as alt
import pandas as pd

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HEIGHT = 260


def period_axis(grain: str) -> alt.X:
    """Time on x; the time unit makes each bar as wide as its hour or day."""
    unit = "yearmonthdatehours" if grain == "hour" else "yearmonthdate"
    return alt.X(f"{unit}(period):T", title=grain)


def tokens_over_time(usage: pd.DataFrame, grain: str) -> alt.Chart:
    """Prompt plus completion tokens per day (or hour), stacked by model."""
    return (
        alt.Chart(usage, height=HEIGHT)
        .mark_bar()
        .encode(
            x=period_axis(grain),
            y=alt.Y("sum(tokens):Q", title="tokens"),
            color=alt.Color("model:N", title="model"),
            tooltip=[
                alt.Tooltip("period:T", title=grain),
                "model:N",
                alt.Tooltip("prompt_tokens:Q", title="prompt tokens", format=","),
                alt.Tooltip("completion_tokens:Q", title="completion tokens", format=","),
                alt.Tooltip("runs:Q", title="replies"),
            ],
        )
    )


def speed_over_time(usage: pd.DataFrame, grain: str) -> alt.Chart:
    """Tokens per second per model and period (the period's tokens over its generation time)."""
    speeds = usage.dropna(subset=["tokens_per_second"])
    return (
        alt.Chart(speeds, height=HEIGHT)
        .mark_line(point=True)
        .encode(
            x=period_axis(grain),
            y=alt.Y("tokens_per_second:Q", title="tokens/s"),
            color=alt.Color("model:N", title="model"),
            tooltip=[
                alt.Tooltip("period:T", title=grain),
                "model:N",
                alt.Tooltip("tokens_per_second:Q", title="tokens/s", format=".1f"),
                alt.Tooltip("runs:Q", title="replies"),
            ],
        )
    )


def activity_heatmap(activity: pd.DataFrame) -> alt.Chart:
    """Replies by hour of day and weekday, local time."""
    cells = activity.assign(day=[WEEKDAYS[int(d) - 1] for d in activity["weekday"]])
    return (
        alt.Chart(cells, height=HEIGHT)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="hour of day", scale=alt.Scale(domain=list(range(24)))),
            y=alt.Y("day:N", title=None, sort=WEEKDAYS, scale=alt.Scale(domain=WEEKDAYS)),
            color=alt.Color("runs:Q", title="replies", scale=alt.Scale(scheme="blues")),
            tooltip=["day:N", "hour:O", alt.Tooltip("runs:Q", title="replies")],
        )
    )


def reply_length_histogram(lengths: pd.DataFrame) -> alt.Chart:
    """How many replies had how many completion tokens."""
    return (
        alt.Chart(lengths, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", title="completion tokens", bin="binned"),
            x2="bin_end:Q",
            y=alt.Y("replies:Q", title="replies"),
            tooltip=[
                alt.Tooltip("bin_start:Q", title="from"),
                alt.Tooltip("bin_end:Q", title="to (excluded)"),
                alt.Tooltip("replies:Q", title="replies"),
            ],
        )
    )
