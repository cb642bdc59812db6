"""The Stats page's Altair charts, drawn from the frames chatcore.stats returns."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ui.i18n import _, weekday_names

HEIGHT = 260


def grain_title(grain: str) -> str:
    return _("hour") if grain == "hour" else _("day")


def period_axis(grain: str) -> alt.X:
    """Time on x; the time unit makes each bar as wide as its hour or day."""
    unit = "yearmonthdatehours" if grain == "hour" else "yearmonthdate"
    return alt.X(f"{unit}(period):T", title=grain_title(grain))


def tokens_over_time(usage: pd.DataFrame, grain: str) -> alt.Chart:
    """Prompt plus completion tokens per day (or hour), stacked by model."""
    return (
        alt.Chart(usage, height=HEIGHT)
        .mark_bar()
        .encode(
            x=period_axis(grain),
            y=alt.Y("sum(tokens):Q", title=_("tokens")),
            color=alt.Color("model:N", title=_("model")),
            tooltip=[
                alt.Tooltip("period:T", title=grain_title(grain)),
                "model:N",
                alt.Tooltip("prompt_tokens:Q", title=_("prompt tokens"), format=","),
                alt.Tooltip("completion_tokens:Q", title=_("completion tokens"), format=","),
                alt.Tooltip("runs:Q", title=_("replies")),
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
            y=alt.Y("tokens_per_second:Q", title=_("tokens/s")),
            color=alt.Color("model:N", title=_("model")),
            tooltip=[
                alt.Tooltip("period:T", title=grain_title(grain)),
                "model:N",
                alt.Tooltip("tokens_per_second:Q", title=_("tokens/s"), format=".1f"),
                alt.Tooltip("runs:Q", title=_("replies")),
            ],
        )
    )


def activity_heatmap(activity: pd.DataFrame) -> alt.Chart:
    """Replies by hour of day and weekday, local time."""
    weekdays = weekday_names()  # Monday first, in the interface's language
    cells = activity.assign(day=[weekdays[int(d) - 1] for d in activity["weekday"]])
    return (
        alt.Chart(cells, height=HEIGHT)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title=_("hour of day"), scale=alt.Scale(domain=list(range(24)))),
            y=alt.Y("day:N", title=None, sort=weekdays, scale=alt.Scale(domain=weekdays)),
            color=alt.Color("runs:Q", title=_("replies"), scale=alt.Scale(scheme="blues")),
            tooltip=["day:N", "hour:O", alt.Tooltip("runs:Q", title=_("replies"))],
        )
    )


def reply_length_histogram(lengths: pd.DataFrame) -> alt.Chart:
    """How many replies had how many completion tokens."""
    return (
        alt.Chart(lengths, height=HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", title=_("completion tokens"), bin="binned"),
            x2="bin_end:Q",
            y=alt.Y("replies:Q", title=_("replies")),
            tooltip=[
                alt.Tooltip("bin_start:Q", title=_("from")),
                alt.Tooltip("bin_end:Q", title=_("to (excluded)")),
                alt.Tooltip("replies:Q", title=_("replies")),
            ],
        )
    )
