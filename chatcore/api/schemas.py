"""Answer shapes the API's routers share."""

from __future__ import annotations

from dataclasses import fields
from typing import get_type_hints

from pydantic import BaseModel, Field, create_model

from chatcore.types import Metrics


def metrics_schema() -> type[BaseModel]:
    """The API's metrics: every field of Metrics (so the API can't drift from what is stored),
    plus the speed and the time to the first token."""
    hints = get_type_hints(Metrics)
    return create_model(
        "MetricsOut",
        tokens_per_second=(float | None, ...),
        ttft_ms=(
            float | None,
            Field(description="Time to the first token of any kind (thinking or answer)"),
        ),
        **{f.name: (hints[f.name], ...) for f in fields(Metrics)},
    )


MetricsOut = metrics_schema()


def metrics_out(metrics: Metrics, ttft_ms: float | None) -> BaseModel:
    return MetricsOut(
        **metrics.as_dict(), tokens_per_second=metrics.tokens_per_second, ttft_ms=ttft_ms
    )
