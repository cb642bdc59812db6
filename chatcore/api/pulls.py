"""The REST twin of the Models page's pulls: start one in the background, watch it, cancel it.

Registered by `create_api` (chatcore/api/rest.py). POST /pulls answers 202 at once with the job;
GET /pulls/{id} reads its progress from memory; DELETE /pulls/{id} cancels it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chatcore.pulls import PullView
from chatcore.services import Services

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown pull"},
    422: {"description": "Invalid input: nothing was started"},
    503: {"description": "The host is not one of the Ollama hosts, or is not answering"},
}


class PullIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=300, description="The model to pull, e.g. phi4")
    host: str | None = Field(None, description="An Ollama host; the main one when left out")


class LayerOut(BaseModel):
    digest: str
    completed: int
    total: int


class PullOut(BaseModel):
    id: str
    host: str
    model: str
    state: Literal["running", "done", "failed", "cancelled"]
    status: str = Field(description="Ollama's latest status line")
    fraction: float = Field(description="0 to 1: bytes done over every layer's size")
    completed: int
    total: int
    bytes_per_second: float | None
    error: str | None
    started_at: float = Field(description="Epoch seconds")
    finished_at: float | None
    layers: list[LayerOut]


def pull_out(view: PullView) -> PullOut:
    return PullOut(
        **{name: getattr(view, name) for name in PullOut.model_fields if name != "layers"},
        layers=[LayerOut(**vars(layer)) for layer in view.layers],
    )


def pull_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(responses=ERRORS)

    @router.post("/pulls", response_model=PullOut, status_code=202)
    def start_pull(body: PullIn) -> PullOut:
        """Start pulling a model onto an Ollama host; it goes on in the background whatever
        else happens. Asking for a pull already running answers that one."""
        host = body.host or services().settings.all_ollama_hosts()[0]
        return pull_out(services().pulls.start(host, body.model))

    @router.get("/pulls", response_model=list[PullOut])
    def list_pulls() -> list[PullOut]:
        """The pulls running and the recently finished ones, newest first."""
        return [pull_out(view) for view in services().pulls.list()]

    @router.get("/pulls/{pull_id}", response_model=PullOut)
    def get_pull(pull_id: str) -> PullOut:
        return pull_out(services().pulls.get(pull_id))

    @router.delete("/pulls/{pull_id}", response_model=PullOut)
    def cancel_pull(pull_id: str) -> PullOut:
        """Cancel a running pull (it stops at its next progress line); poll GET until its
        state is `cancelled`. A finished pull is left as it ended."""
        return pull_out(services().pulls.cancel(pull_id))

    return router
