"""The one-line caption under each reply: who answered, how much, how fast."""

from __future__ import annotations

from chatcore.types import Metrics

NS_PER_SECOND = 1e9


def reply_caption(
    model: str,
    metrics: Metrics,
    ttft_ms: float | None,
    status: str,
    attempts: int = 1,
    host: str | None = None,
) -> str:
    parts = [model]
    if metrics.completion_tokens is not None:
        parts.append(f"{metrics.completion_tokens} tokens")
    if (speed := metrics.tokens_per_second) is not None:
        parts.append(f"{speed:.1f} tok/s")
    if ttft_ms is not None:
        parts.append(f"first token {ttft_ms / 1000:.2f} s")
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
