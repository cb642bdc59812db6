"""Display text and units: captions, sizes, durations, and the tables with their column headers.

Everything a user reads as a number or a header is shaped here; chatcore hands over typed rows.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from chatcore.compare import ALL_BAD, BEST, TIE, Standing, VoteChoice
from chatcore.history import ConversationRow
from chatcore.hosts import HostStatus
from chatcore.models import Layer, ModelCard, RunningModel
from chatcore.pulls import LayerView, PullView
from chatcore.types import Metrics, ModelInfo
from ui.i18n import ENGLISH, N_, _, current_language, format_number, ngettext
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
                _("{tokens} tokens ({thinking} thinking, {answer} answer)").format(
                    tokens=metrics.completion_tokens,
                    thinking=metrics.thinking_tokens,
                    answer=metrics.answer_tokens,
                )
            )
        else:
            parts.append(_("{tokens} tokens").format(tokens=metrics.completion_tokens))
    if (speed := metrics.tokens_per_second) is not None:
        template = _("{speed} tok/s incl. thinking") if thought else _("{speed} tok/s")
        parts.append(template.format(speed=format_number(speed, 1)))
    if ttft_ms is not None:
        parts.append(_("first token {seconds} s").format(seconds=f"{ttft_ms / 1000:.2f}"))
    if thought and metrics.answer_ms is not None:
        seconds = f"{metrics.answer_ms / 1000:.2f}"
        parts.append(_("answer after {seconds} s").format(seconds=seconds))
    if metrics.load_duration_ns is not None:
        seconds = f"{metrics.load_duration_ns / NS_PER_SECOND:.2f}"
        parts.append(_("load {seconds} s").format(seconds=seconds))
    if metrics.done_reason == "length":
        parts.append(_("cut at max tokens"))
    if metrics.context_dropped:
        parts.extend(context_fitting_parts(metrics))
    if attempts > 1:
        failed = attempts - 1
        tried = ngettext("{count} host failed", "{count} hosts failed", failed).format(count=failed)
        parts.append(
            _("answered by {host} after {tried}").format(host=host, tried=tried) if host else tried
        )
    if status == "stopped":
        parts.append(_("stopped"))
    return " · ".join(parts)


def context_fitting_parts(metrics: Metrics) -> list[str]:
    """What the context fitting did to the history: summarised (a note stands for them) and
    left out, each said as what it was."""
    window = (
        _("the {size}-token context").format(size=format_number(metrics.num_ctx))
        if metrics.num_ctx
        else _("the context")
    )
    summarised = metrics.context_summarised
    left_out = metrics.context_dropped - summarised
    parts = []
    if summarised:
        parts.append(
            _("{count} old messages summarised to fit {window}").format(
                count=summarised, window=window
            )
        )
    if left_out:
        parts.append(
            _("{count} old messages left out to fit {window}").format(count=left_out, window=window)
        )
    return parts


def thinking_label(seconds: float | None, live: bool = False) -> str:
    """The Thinking block's title: while it streams, then with how long the model thought."""
    if live:
        return (
            _("Thinking…")
            if seconds is None
            else _("Thinking… {seconds} s").format(seconds=f"{seconds:.1f}")
        )
    if seconds is None:
        return _("Thinking")
    return _("Thought for {seconds} s").format(seconds=f"{seconds:.1f}")


def answer_heading(label: str, model: str, blind: bool, revealed: bool) -> str:
    """A Compare column's heading: the model, or its letter until the names are revealed."""
    if not blind:
        return model
    return f"{label} · {model}" if revealed else _("Answer {label}").format(label=label)


PARAMETER_LABELS = {
    "temperature": N_("Temperature"),
    "top_p": N_("Top p"),
    "max_tokens": N_("Max tokens"),
    "system_prompt": N_("System prompt"),
    "context_size": N_("Context size"),
    "collections": N_("Knowledge base"),
}


def think_label(value: bool | str | None) -> str:
    """A think setting as the sidebar and the presets table name it."""
    if value is None:
        return _("model default")
    if isinstance(value, bool):
        return _("on") if value else _("off")
    return str(value)


def parameter_label(field: str) -> str:
    """A generation parameter as the sidebar names it."""
    return _(PARAMETER_LABELS[field]) if field in PARAMETER_LABELS else field


def vote_label(choice: VoteChoice, answers: int) -> str:
    """A vote as the buttons and the verdict say it: "A is better", "Tie", "Both are bad"."""
    two = answers == 2
    if choice.outcome == BEST:
        template = _("{label} is better") if two else _("{label} is best")
        return template.format(label=choice.winner_label)
    if choice.outcome == TIE:
        return _("Tie")
    if choice.outcome == ALL_BAD:
        return _("Both are bad") if two else _("All are bad")
    return choice.text


ROLE_WORDS = {
    "draft": N_("drafting"),
    "critique": N_("critiquing"),
    "revise": N_("revising"),
    "answer": N_("answering"),
    "synthesis": N_("writing the final answer"),
}


def collaboration_step(step: tuple[str, str], blind: bool) -> str:
    """A collaboration's live step in its Compare column; the models stay unnamed while blind."""
    role, model = step
    doing = _(ROLE_WORDS[role]) if role in ROLE_WORDS else role
    return doing if blind else f"{model} {doing}"


def collaboration_steps(steps: tuple[tuple[str, str], ...]) -> str:
    """How a collaboration's answer was made: `draft: phi3 · critique: qwen3 · revise: phi3`."""
    return " · ".join(f"{role}: {model}" for role, model in steps)


def conversation_summary(row: ConversationRow) -> str:
    models = ", ".join(row.models) or _("no model yet")
    return _(
        "{messages} messages · {tokens} tokens · {models} · "
        "started {started} · last active {active}"
    ).format(
        messages=format_number(row.messages),
        tokens=format_number(row.tokens),
        models=models,
        started=when(row.created_at),
        active=when(row.updated_at),
    )


def unreachable_text(host: str, detail: str) -> str:
    """A server that does not answer: the core's own words in English (they name the cause),
    the same advice in the interface's language otherwise."""
    if current_language() == ENGLISH:
        return detail
    return _(
        "The model server at {host} does not answer. Start it (Ollama: `ollama serve`, or set "
        "`OLLAMA_HOST` to where it runs), then refresh."
    ).format(host=host)


def model_label(model: ModelInfo) -> str:
    """A model and where it runs: its hosts, or this app for the embedded engine."""
    if model.backend == "embedded":
        return _("{model} · in this app").format(model=model.name)
    return model.label


def picker_label(model: ModelInfo) -> str:
    """A model as the sidebar's picker names it: its hosts without the scheme, and at most two,
    so the name is not cut off in a narrow sidebar."""
    if model.backend == "embedded":
        return model_label(model)
    hosts = [short_host(h) for h in (model.hosts or (model.host,))]
    more = f" +{len(hosts) - 2}" if len(hosts) > 2 else ""
    return f"{model.name} · {', '.join(hosts[:2])}{more}"


def short_host(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://").rstrip("/")


def pull_job_status(job: PullView) -> str:
    speed = f" · {human_bytes(job.bytes_per_second)}/s" if job.bytes_per_second else ""
    done = _("{done} of {total}").format(
        done=human_bytes(job.completed), total=human_bytes(job.total)
    )
    return f"{safe_label(job.model)} · {job.status} · {done}{speed}"


def layer_status(layer: Layer | LayerView) -> str:
    done = _("{done} of {total}").format(
        done=human_bytes(layer.completed), total=human_bytes(layer.total)
    )
    return _("layer {digest}").format(digest=layer.digest[7:19]) + f" · {done}"


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
        return _("stays loaded")
    if seconds <= 0:
        return _("now")
    minutes, secs = divmod(int(seconds), 60)
    if minutes:
        return _("in {minutes} min {seconds} s").format(minutes=minutes, seconds=f"{secs:02d}")
    return _("in {seconds} s").format(seconds=secs)


def percent(share: float | None) -> str:
    return "—" if share is None or pd.isna(share) else f"{share:.1%}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return _("{value} s").format(value=format_number(seconds, 1))
    if seconds < 3600:
        return _("{value} min").format(value=format_number(seconds / 60, 1))
    return _("{value} h").format(value=format_number(seconds / 3600, 1))


def when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


# --- errors: the reference to their line in the log ---


def with_log_reference(
    message: str, request_id: str | None = None, run_id: int | None = None
) -> str:
    """An error with what finds its line in dashboard.log: the request id, or the run's id."""
    if request_id:
        return message + "  \n" + _("Log id: `{id}`").format(id=request_id)
    if run_id is not None:
        return message + "  \n" + _("In the log as run `{id}`").format(id=run_id)
    return message


def waiting_status(ahead: int | None) -> str:
    if not ahead:
        return _("Waiting for the model…")
    return ngettext(
        "Waiting for the model: {count} reply ahead of this one…",
        "Waiting for the model: {count} replies ahead of this one…",
        ahead,
    ).format(count=ahead)


def backup_label(name: str, taken_at: datetime, size_bytes: int) -> str:
    return f"{taken_at.strftime('%Y-%m-%d %H:%M:%S')} · {human_bytes(size_bytes)} · {name}"


# --- tables: Models page ---


def hosts_table(statuses: list[HostStatus]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                _("host"): s.host.url,
                _("speaks"): "OpenAI API" if s.host.kind == "openai" else "Ollama",
                _("reachable"): s.reachable,
                _("version"): s.version or "",
                _("latency (ms)"): None if s.latency_ms is None else round(s.latency_ms, 1),
                _("in flight"): s.in_flight,
                _("from"): s.host.source,
                _("API key"): s.host.key_shown,
            }
            for s in statuses
        ]
    )


def installed_table(models: list[ModelInfo]) -> pd.DataFrame:
    columns = [
        _("model"),
        _("family"),
        _("parameters"),
        _("quantization"),
        _("size on disk"),
        _("modified"),
        _("available"),
    ]
    rows = [
        (
            m.name,
            m.family or "",
            m.parameter_size or "",
            m.quantization or "",
            human_bytes(m.size_bytes),
            m.modified_at.strftime("%Y-%m-%d") if m.modified_at else "",
            m.available,
        )
        for m in models
    ]
    return pd.DataFrame(rows, columns=columns)


def running_table(running: list[RunningModel]) -> pd.DataFrame:
    columns = [_("model"), _("memory"), "VRAM", _("context allocated"), _("unloads")]
    rows = [
        (
            r.name,
            human_bytes(r.size_bytes),
            human_bytes(r.vram_bytes),
            r.context_length,
            time_until(r.expires_at),
        )
        for r in running
    ]
    return pd.DataFrame(rows, columns=columns)


def parameters_table(card: ModelCard) -> pd.DataFrame:
    rows = [(k, ", ".join(v)) for k, v in card.parameters.items()]
    return pd.DataFrame(rows, columns=[_("parameter"), _("value")])


# --- tables: Compare and History ---


def leaderboard_columns() -> dict[str, object]:
    return {
        "Model": st.column_config.TextColumn(_("Model")),
        "Rating": st.column_config.NumberColumn(_("Rating")),
        "Win rate": st.column_config.NumberColumn(_("Win rate"), format="percent"),
        "Wins": st.column_config.NumberColumn(_("Wins")),
        "Votes": st.column_config.NumberColumn(_("Votes")),
    }


def leaderboard_table(standings: list[Standing]) -> pd.DataFrame:
    rows = [(s.model, round(s.rating), s.win_rate, s.wins, s.votes) for s in standings]
    return pd.DataFrame(rows, columns=["Model", "Rating", "Win rate", "Wins", "Votes"])


def conversation_columns() -> dict[str, object]:
    return {
        "id": None,
        "Client": st.column_config.TextColumn(_("Client")),
        "Title": st.column_config.TextColumn(_("Title")),
        "Models": st.column_config.TextColumn(_("Models")),
        "Messages": st.column_config.NumberColumn(_("Messages")),
        "Tokens": st.column_config.NumberColumn(_("Tokens")),
        "Created": st.column_config.DatetimeColumn(_("Created"), format="YYYY-MM-DD HH:mm"),
        "Last active": st.column_config.DatetimeColumn(_("Last active"), format="YYYY-MM-DD HH:mm"),
    }


def client_name(client: str | None) -> str:
    """A conversation's client as History shows it: the tool, or the dashboard itself."""
    return client or _("this dashboard")


def conversations_table(rows: list[ConversationRow]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [r.id for r in rows],
            "Client": [client_name(r.client) for r in rows],
            "Title": [r.title for r in rows],
            "Models": [", ".join(r.models) for r in rows],
            "Messages": [r.messages for r in rows],
            "Tokens": [r.tokens for r in rows],
            "Created": [r.created_at for r in rows],
            "Last active": [r.updated_at for r in rows],
        }
    )


# --- tables: Stats page (its frames keep chatcore's column names; these are their headers) ---

# What an empty cell shows: nothing (Streamlit writes "None" unless told otherwise).
EMPTY_CELL = ""
# Columns that count things: whole numbers, though DuckDB's sums arrive as floats.
STATS_COUNTS = ("runs", "errors", "prompt_tokens", "completion_tokens", "num_ctx", "switches")


def stats_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A Stats frame ready to show: its counts as integers (an empty one stays empty, not 0)."""
    shown = frame.copy()
    for column in STATS_COUNTS:
        if column in shown.columns:
            shown[column] = shown[column].round().astype("Int64")
    return shown


def per_model_columns() -> dict[str, object]:
    return {
        "model": st.column_config.TextColumn(_("Model")),
        "runs": st.column_config.NumberColumn(_("Replies"), format="localized"),
        "errors": st.column_config.NumberColumn(_("Errors"), format="localized"),
        "prompt_tokens": st.column_config.NumberColumn(_("Prompt tokens"), format="localized"),
        "completion_tokens": st.column_config.NumberColumn(
            _("Completion tokens"), format="localized"
        ),
        "median_tokens_per_second": st.column_config.NumberColumn(
            _("Median tok/s (thinking + answer)"), format="%.1f"
        ),
        "p95_tokens_per_second": st.column_config.NumberColumn(
            _("p95 tok/s (thinking + answer)"), format="%.1f"
        ),
        "median_ttft_ms": st.column_config.NumberColumn(
            _("Median first token, any kind (ms)"), format="%.0f"
        ),
        "median_load_ms": st.column_config.NumberColumn(_("Median load (ms)"), format="%.0f"),
        "max_load_ms": st.column_config.NumberColumn(_("Max load (ms)"), format="%.0f"),
        "median_prompt_tokens_per_second": st.column_config.NumberColumn(
            _("Median prompt tok/s"), format="%.0f"
        ),
        "thinking_token_share": st.column_config.NumberColumn(
            _("Thinking share of tokens"), format="percent"
        ),
        "thinking_time_share": st.column_config.NumberColumn(
            _("Thinking share of time"), format="percent"
        ),
        "median_answer_ms": st.column_config.NumberColumn(
            _("Median time to answer (ms)"), format="%.0f"
        ),
    }


def context_hit_columns() -> dict[str, object]:
    return {
        "id": st.column_config.NumberColumn(_("Run")),
        "conversation_id": st.column_config.TextColumn(_("Conversation")),
        "started_at": st.column_config.DatetimeColumn(_("Started"), format="YYYY-MM-DD HH:mm"),
        "model": st.column_config.TextColumn(_("Model")),
        "backend": st.column_config.TextColumn(_("Backend")),
        "host": st.column_config.TextColumn(_("Host")),
        "prompt_tokens": st.column_config.NumberColumn(_("Prompt tokens"), format="localized"),
        "num_ctx": st.column_config.NumberColumn(_("Window (num_ctx)"), format="localized"),
        "estimated_tokens": st.column_config.NumberColumn(_("Estimated tokens"), format="%.0f"),
        "reason": st.column_config.TextColumn(_("Why")),
    }


def switch_columns() -> dict[str, object]:
    return {
        "model": st.column_config.TextColumn(_("Switched to")),
        "switches": st.column_config.NumberColumn(_("Switches"), format="localized"),
        "load_seconds": st.column_config.NumberColumn(_("Load time (s)"), format="%.1f"),
        "median_load_ms": st.column_config.NumberColumn(_("Median load (ms)"), format="%.0f"),
    }
