"""The REST twin of the Stats page: GET /stats answers the page's figures and tables for the
page's filters (dates, models, backends, hosts, clients), with the values those filters offer.

Registered by `create_api` (chatcore/api/rest.py). The route calls the same StatsService the
page calls, so a script and the page always agree; a plain `def`, so FastAPI runs it on a
worker thread. A figure the runs did not report is null, never 0: unknown is not zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from chatcore.errors import InvalidInput
from chatcore.services import Services
from chatcore.stats import FilterChoices, StatsFilter, StatsReport

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "A bad filter (a malformed date, start after end, an unknown parameter)"},
    503: {"description": "The database is not available"},
}
FILTER_PARAMETERS = frozenset({"start", "end", "model", "backend", "host", "client"})
ONLY_THESE = "Only these {} (repeat the parameter for several)"
BACKENDS = "Only these backends: ollama, openai, embedded (repeat the parameter for several)"
CLIENTS = "Only runs sent by these: `dashboard`, or a proxy's client (such as `ollama-python`)"


# --- the answer ---


class FilterOut(BaseModel):
    """The filter the figures are for: omitted dates are the first and last day with a run (the
    page's every-day range); an empty list means every value."""

    start: date | None
    end: date | None
    models: list[str]
    backends: list[str]
    hosts: list[str]
    clients: list[str]


class ChoicesOut(BaseModel):
    """What the page's filters offer: the values the finished runs hold."""

    models: list[str]
    backends: list[str]
    hosts: list[str]
    clients: list[str] = Field(description="`dashboard`, or a tool through /ollama or /v1")
    first_day: date | None = Field(description="The local day of the first run; null: no runs")
    last_day: date | None


class HeadlineOut(BaseModel):
    conversations: int
    messages: int = Field(description="Yours plus the replies")
    replies: int
    prompt_tokens: int
    completion_tokens: int
    generation_seconds: float
    error_rate: float | None = Field(description="Share of the replies; null: no replies")
    stop_rate: float | None = Field(description="Share of the replies; null: no replies")


class PerModelRow(BaseModel):
    model: str
    runs: int = Field(description="The page's Replies column")
    errors: int
    prompt_tokens: int
    completion_tokens: int
    median_tokens_per_second: float | None = Field(description="Thinking + answer")
    p95_tokens_per_second: float | None
    median_ttft_ms: float | None = Field(description="The first token of any kind")
    median_load_ms: float | None
    max_load_ms: float | None
    median_prompt_tokens_per_second: float | None
    thinking_token_share: float | None = Field(description="null: the model never thought")
    thinking_time_share: float | None
    median_answer_ms: float | None = Field(description="null: the model never thought")


class UsageRow(BaseModel):
    period: datetime = Field(description="The local hour or day it starts (see `grain`)")
    model: str
    runs: int
    errors: int
    stopped: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    generation_seconds: float
    tokens_per_second: float | None


class ActivityRow(BaseModel):
    weekday: int = Field(description="Local ISO weekday, 1 = Monday")
    hour: int = Field(description="Local hour of the day")
    runs: int
    completion_tokens: int


class ReplyLengthRow(BaseModel):
    bin_start: int = Field(description="Completion tokens, from (inclusive)")
    bin_end: int = Field(description="to (exclusive)")
    replies: int


class ContextHitRow(BaseModel):
    id: int = Field(description="The run")
    conversation_id: str | None
    started_at: datetime
    model: str
    backend: str
    host: str
    prompt_tokens: int | None
    num_ctx: int | None = Field(description="The context window in force")
    estimated_tokens: float | None = Field(description="The app's estimate of the prompt")
    reason: str = Field(description="Why it was flagged")


class ModelSwitchRow(BaseModel):
    model: str = Field(description="The model switched to")
    switches: int
    load_seconds: float
    median_load_ms: float | None


class KnowledgeOut(BaseModel):
    replies: int
    with_knowledge: int = Field(description="Replies that searched the knowledge base")
    used_passages: int = Field(description="Replies given passages")
    median_ms: float | None = Field(description="Retrieval time; null: none searched")
    p95_ms: float | None
    mean_chunks: float | None = Field(description="Passages per searching reply")


class StatsOut(BaseModel):
    filter: FilterOut
    choices: ChoicesOut
    grain: Literal["hour", "day"] = Field(description="The periods of usage_over_time")
    headline: HeadlineOut
    per_model: list[PerModelRow] = Field(description="Busiest first")
    usage_over_time: list[UsageRow]
    activity: list[ActivityRow] = Field(description="Only the cells that have runs")
    reply_lengths: list[ReplyLengthRow]
    context_hits_total: int = Field(description="Every flagged reply (at most 200 are listed)")
    context_hits: list[ContextHitRow] = Field(description="Newest first")
    model_switches: list[ModelSwitchRow]
    knowledge: KnowledgeOut


# --- shaping the report ---


def plain(value: Any) -> Any:
    """A DataFrame cell as JSON takes it: NaN, NaT and None are null (unknown, never 0)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows, one object each, under its column names."""
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def stats_out(
    f: StatsFilter, choices: FilterChoices, report: StatsReport, knowledge: dict[str, Any]
) -> StatsOut:
    """The report as the page shows it: the filter it is for, what the filters offer, and each
    table's rows under the page's column names (context hits' `total` once, not on every row)."""
    hits = report.context_hits
    return StatsOut(
        filter=FilterOut(**asdict(f)),
        choices=ChoicesOut(**asdict(choices)),
        grain=report.grain,  # type: ignore[arg-type]  # "hour" or "day"
        headline=HeadlineOut(**records(report.headline)[0]),
        per_model=[PerModelRow(**row) for row in records(report.per_model)],
        usage_over_time=[UsageRow(**row) for row in records(report.usage_over_time)],
        activity=[ActivityRow(**row) for row in records(report.activity)],
        reply_lengths=[ReplyLengthRow(**row) for row in records(report.reply_lengths)],
        context_hits_total=int(hits["total"].iloc[0]) if not hits.empty else 0,
        context_hits=[ContextHitRow(**row) for row in records(hits.drop(columns=["total"]))],
        model_switches=[ModelSwitchRow(**row) for row in records(report.model_switches)],
        knowledge=KnowledgeOut(**{k: plain(v) for k, v in knowledge.items()}),
    )


# --- reading the filter ---


def refuse_unknown(request: Request) -> None:
    """A misspelt filter would silently widen the figures: refuse it, as bodies refuse extras."""
    unknown = sorted(set(request.query_params) - FILTER_PARAMETERS)
    if unknown:
        raise InvalidInput(
            f"Unknown filter {', '.join(unknown)}: the filters are "
            f"{', '.join(sorted(FILTER_PARAMETERS))}."
        )


def picked(name: str, values: list[str]) -> tuple[str, ...]:
    """A multiselect's values; a blank one is a mistake, not "every value"."""
    if any(not value.strip() for value in values):
        raise InvalidInput(f"{name}: a blank value (omit {name} for every value).")
    return tuple(dict.fromkeys(values))


def requested_filter(
    start: date | None, end: date | None, values: dict[str, list[str]]
) -> StatsFilter:
    """The filter as asked for, checked before anything is read."""
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start ({start}) is after end ({end}).")
    return StatsFilter(
        start,
        end,
        picked("model", values["model"]),
        picked("backend", values["backend"]),
        picked("host", values["host"]),
        picked("client", values["client"]),
    )


def every_day_by_default(f: StatsFilter, choices: FilterChoices) -> StatsFilter:
    """An omitted date is the first or last day with a run, as the page's every-day range is
    (so your messages are counted within the same days as on the page)."""
    return replace(
        f,
        start=choices.first_day if f.start is None else f.start,
        end=choices.last_day if f.end is None else f.end,
    )


def stats_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["stats"], responses=ERRORS)

    @router.get("/stats", response_model=StatsOut)
    def stats(
        request: Request,
        start: Annotated[date | None, Query(description="The first local day, YYYY-MM-DD")] = None,
        end: Annotated[date | None, Query(description="The last local day, inclusive")] = None,
        model: Annotated[list[str] | None, Query(description=ONLY_THESE.format("models"))] = None,
        backend: Annotated[list[str] | None, Query(description=BACKENDS)] = None,
        host: Annotated[list[str] | None, Query(description=ONLY_THESE.format("hosts"))] = None,
        client: Annotated[list[str] | None, Query(description=CLIENTS)] = None,
    ) -> StatsOut:
        """The Stats page's figures for its filters: the headline, the per-model table, usage
        over time, activity, reply lengths, context-window hits, model switches and the
        knowledge base's use, with the values the filters offer. A filter that matches nothing
        answers zero replies and empty tables."""
        refuse_unknown(request)
        values = {"model": model, "backend": backend, "host": host, "client": client}
        asked = requested_filter(start, end, {name: v or [] for name, v in values.items()})
        service = services().stats
        choices = service.choices()
        f = every_day_by_default(asked, choices)
        report = service.report(f, choices)
        return stats_out(f, choices, report, services().knowledge.usage(f))

    return router
