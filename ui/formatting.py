"""Display text and units: captions, sizes, durations, and the tables with their column headers.

Everything a user reads as a number or a header is shaped here; chatcore hands over typed rows.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from chatcore.compare import Standing
from chatcore.history import ConversationRow
from chatcore.hosts import HostStatus
from chatcore.models import Layer, ModelCard, RunningModel
from chatcore.pulls import LayerView, PullView
from chatcore.types import Metrics, ModelInfo
from ui.safe_markdown import safe_label

NS_PER_SECOND = 1e9


# --- captions ---


def reply_caption(
    model: str,
    metrics: Metrics,
    ttft_ms: float | None,
    status: str,
    attempts: int = 1,
    host: str | None = None,
) -> str:
    """The one-line caption under each reply: who answered, how much, how fast; and where, when
    a retry moved it to another host."""
    parts = [model]
    thought = bool(metrics.thinking_tokens)
    if metrics.completion_tokens is not None:
        if thought:
            parts.append(
                f"{metrics.completion_tokens} tokens ({metrics.thinking_tokens} thinking, "
                f"{metrics.answer_tokens} answer)"
            )
        else:
            parts.append(f"{metrics.completion_tokens} tokens")
    if (speed := metrics.tokens_per_second) is not None:
        parts.append(f"{speed:.1f} tok/s" + (" incl. thinking" if thought else ""))
    if ttft_ms is not None:
        parts.append(f"first token {ttft_ms / 1000:.2f} s")
    if thought and metrics.answer_ms is not None:
        parts.append(f"answer after {metrics.answer_ms / 1000:.2f} s")
    if metrics.load_duration_ns is not None:
        parts.append(f"load {metrics.load_duration_ns / NS_PER_SECOND:.2f} s")
    if metrics.done_reason == "length":
        parts.append("cut at max tokens")
    if metrics.context_dropped:
        parts.append(f"{metrics.context_dropped} old messages left out to fit the context")
    if attempts > 1:
        failed = attempts - 1
        tried = f"{failed} host{'s' if failed > 1 else ''} failed"
        parts.append(f"answered by {host} after {tried}" if host else tried)
    if status == "stopped":
        parts.append("stopped")
    return " · ".join(parts)


def thinking_label(seconds: float | None, live: bool = False) -> str:
    """The Thinking block's title: while it streams, then with how long the model thought."""
    if live:
        return "Thinking…" if seconds is None else f"Thinking… {seconds:.1f} s"
    return "Thinking" if seconds is None else f"Thought for {seconds:.1f} s"


def answer_heading(label: str, model: str, blind: bool, revealed: bool) -> str:
    """A Compare column's heading: the model, or its letter until the names are revealed."""
    if not blind:
        return model
    return f"{label} · {model}" if revealed else f"Answer {label}"


def conversation_summary(row: ConversationRow) -> str:
    models = ", ".join(row.models) or "no model yet"
    return (
        f"{row.messages:,} messages · {row.tokens:,} tokens · {models} · "
        f"started {when(row.created_at)} · last active {when(row.updated_at)}"
    )


def picker_label(model: ModelInfo) -> str:
    """A model as the sidebar's picker names it: its hosts without the scheme, and at most two,
    so the name is not cut off in a narrow sidebar."""
    if model.backend == "embedded":
        return model.label
    hosts = [short_host(h) for h in (model.hosts or (model.host,))]
    more = f" +{len(hosts) - 2}" if len(hosts) > 2 else ""
    return f"{model.name} · {', '.join(hosts[:2])}{more}"


def short_host(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://").rstrip("/")


def pull_job_status(job: PullView) -> str:
    speed = f" · {human_bytes(job.bytes_per_second)}/s" if job.bytes_per_second else ""
    return (
        f"{safe_label(job.model)} · {job.status} · {human_bytes(job.completed)} of "
        f"{human_bytes(job.total)}{speed}"
    )


def layer_status(layer: Layer | LayerView) -> str:
    return (
        f"layer {layer.digest[7:19]} · {human_bytes(layer.completed)} of {human_bytes(layer.total)}"
    )


# --- units ---


def human_bytes(count: float | None) -> str:
    if count is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def time_until(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(moment.tzinfo)
    seconds = (moment - now).total_seconds()
    if seconds > 365 * 86400:
        return "stays loaded"
    if seconds <= 0:
        return "now"
    minutes, secs = divmod(int(seconds), 60)
    return f"in {minutes} min {secs:02d} s" if minutes else f"in {secs} s"


def percent(share: float | None) -> str:
    return "—" if share is None or pd.isna(share) else f"{share:.1%}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


# --- errors: the reference to their line in the log ---


def with_log_reference(
    message: str, request_id: str | None = None, run_id: int | None = None
) -> str:
    """An error with what finds its line in dashboard.log: the request id, or the run's id."""
    if request_id:
        return f"{message}  \nLog id: `{request_id}`"
    if run_id is not None:
        return f"{message}  \nIn the log as run `{run_id}`"
    return message


def waiting_status(ahead: int | None) -> str:
    if not ahead:
        return "Waiting for the model…"
    return f"Waiting for the model: {ahead} reply{'' if ahead == 1 else 's'} ahead of this one…"


def backup_label(name: str, taken_at: datetime, size_bytes: int) -> str:
    return f"{taken_at.strftime('%Y-%m-%d %H:%M:%S')} · {human_bytes(size_bytes)} · {name}"


# --- tables: Models page ---


def hosts_table(statuses: list[HostStatus]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "host": s.host.url,
                "speaks": "OpenAI API" if s.host.kind == "openai" else "Ollama",
                "reachable": s.reachable,
                "version": s.version or "",
                "latency (ms)": None if s.latency_ms is None else round(s.latency_ms, 1),
                "in flight": s.in_flight,
                "from": s.host.source,
                "API key": s.host.key_shown,
            }
            for s in statuses
        ]
    )


def installed_table(models: list[ModelInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": m.name,
                "family": m.family or "",
                "parameters": m.parameter_size or "",
                "quantization": m.quantization or "",
                "size on disk": human_bytes(m.size_bytes),
                "modified": m.modified_at.strftime("%Y-%m-%d") if m.modified_at else "",
                "available": m.available,
            }
            for m in models
        ],
        columns=[
            "model",
            "family",
            "parameters",
            "quantization",
            "size on disk",
            "modified",
            "available",
        ],
    )


def running_table(running: list[RunningModel]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": r.name,
                "memory": human_bytes(r.size_bytes),
                "VRAM": human_bytes(r.vram_bytes),
                "context allocated": r.context_length,
                "unloads": time_until(r.expires_at),
            }
            for r in running
        ],
        columns=["model", "memory", "VRAM", "context allocated", "unloads"],
    )


def parameters_table(card: ModelCard) -> pd.DataFrame:
    rows = [{"parameter": k, "value": ", ".join(v)} for k, v in card.parameters.items()]
    return pd.DataFrame(rows, columns=["parameter", "value"])


# --- tables: Compare and History ---

LEADERBOARD_COLUMNS = {"Win rate": st.column_config.NumberColumn(format="percent")}


def leaderboard_table(standings: list[Standing]) -> pd.DataFrame:
    rows = [
        {
            "Model": s.model,
            "Rating": round(s.rating),
            "Win rate": s.win_rate,
            "Wins": s.wins,
            "Votes": s.votes,
        }
        for s in standings
    ]
    return pd.DataFrame(rows, columns=["Model", "Rating", "Win rate", "Wins", "Votes"])


CONVERSATION_COLUMNS = {
    "id": None,
    "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    "Last active": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
}


def conversations_table(rows: list[ConversationRow]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [r.id for r in rows],
            "Title": [r.title for r in rows],
            "Models": [", ".join(r.models) for r in rows],
            "Messages": [r.messages for r in rows],
            "Tokens": [r.tokens for r in rows],
            "Created": [r.created_at for r in rows],
            "Last active": [r.updated_at for r in rows],
        }
    )


# --- tables: Stats page (its frames keep chatcore's column names; these are their headers) ---

PER_MODEL_COLUMNS = {
    "model": st.column_config.TextColumn("Model"),
    "runs": st.column_config.NumberColumn("Replies", format="localized"),
    "errors": st.column_config.NumberColumn("Errors", format="localized"),
    "prompt_tokens": st.column_config.NumberColumn("Prompt tokens", format="localized"),
    "completion_tokens": st.column_config.NumberColumn("Completion tokens", format="localized"),
    "median_tokens_per_second": st.column_config.NumberColumn(
        "Median tok/s (thinking + answer)", format="%.1f"
    ),
    "p95_tokens_per_second": st.column_config.NumberColumn(
        "p95 tok/s (thinking + answer)", format="%.1f"
    ),
    "median_ttft_ms": st.column_config.NumberColumn(
        "Median first token, any kind (ms)", format="%.0f"
    ),
    "median_load_ms": st.column_config.NumberColumn("Median load (ms)", format="%.0f"),
    "max_load_ms": st.column_config.NumberColumn("Max load (ms)", format="%.0f"),
    "median_prompt_tokens_per_second": st.column_config.NumberColumn(
        "Median prompt tok/s", format="%.0f"
    ),
    "thinking_token_share": st.column_config.NumberColumn(
        "Thinking share of tokens", format="percent"
    ),
    "thinking_time_share": st.column_config.NumberColumn(
        "Thinking share of time", format="percent"
    ),
    "median_answer_ms": st.column_config.NumberColumn("Median time to answer (ms)", format="%.0f"),
}
CONTEXT_HIT_COLUMNS = {
    "id": st.column_config.NumberColumn("Run"),
    "conversation_id": st.column_config.TextColumn("Conversation"),
    "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
    "model": st.column_config.TextColumn("Model"),
    "backend": st.column_config.TextColumn("Backend"),
    "host": st.column_config.TextColumn("Host"),
    "prompt_tokens": st.column_config.NumberColumn("Prompt tokens", format="localized"),
    "num_ctx": st.column_config.NumberColumn("Window (num_ctx)", format="localized"),
    "estimated_tokens": st.column_config.NumberColumn("Estimated tokens", format="%.0f"),
    "reason": st.column_config.TextColumn("Why"),
}
SWITCH_COLUMNS = {
    "model": st.column_config.TextColumn("Switched to"),
    "switches": st.column_config.NumberColumn("Switches", format="localized"),
    "load_seconds": st.column_config.NumberColumn("Load time (s)", format="%.1f"),
    "median_load_ms": st.column_config.NumberColumn("Median load (ms)", format="%.0f"),
}
