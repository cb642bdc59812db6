"""The REST twins of the Suites page: suites, their runs, pairwise votes and the leaderboard.

Registered by `create_api` (chatcore/api/rest.py). The endpoints are plain `def`s: FastAPI runs
them on worker threads, never on the event loop. A run starts in the background and is read
back with GET /suite-runs/{id}.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from chatcore.api.schemas import MetricsOut, metrics_out
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.suites import DEFAULT_RUBRIC, Cell, Leaderboard, SuiteRunView

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown suite, suite run or model"},
    422: {"description": "Invalid input: nothing was stored"},
    503: {"description": "The backend or the database is not available"},
}


class PromptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    category: str | None = None
    reference: str | None = Field(None, description="A reference answer, for the judge")


class SuiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    prompts: list[str | PromptIn] = Field(description="Text, or {prompt, category, reference}")


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1)
    model_params: GenerationParams = Field(
        default_factory=GenerationParams, description="Every cell's parameters; seed fixed"
    )
    presets: list[GenerationParams] = Field(
        default_factory=list, description="Several parameter sets: each model runs each one"
    )
    judge: str | None = Field(None, description="A model that judges the answers after the run")


class CellIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_index: int
    model: str
    preset_index: int = 0


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cells: list[CellIn] | None = Field(None, description="Omitted: every cell without an answer")


class JudgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str
    rubric: str = Field(DEFAULT_RUBRIC, min_length=1)


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a_run_id: int
    b_run_id: int
    outcome: Literal["a", "b", "tie", "both_bad"]


class Created(BaseModel):
    id: int


class CellOut(BaseModel):
    model: str
    prompt_index: int
    preset_index: int
    run_id: int | None
    conversation_id: str | None
    text: str
    status: str
    error: str | None
    metrics: MetricsOut  # type: ignore[valid-type]


class SuiteRunOut(BaseModel):
    id: int
    suite_id: int
    state: Literal["running", "done", "stopped"]
    models: list[str]
    presets: list[GenerationParams]
    judge: str | None
    cells: list[CellOut]


class SuiteOut(BaseModel):
    id: int
    name: str
    prompts: list[PromptIn]


class SuiteListed(BaseModel):
    id: int
    name: str
    prompts: int
    created_at: datetime


class RatingOut(BaseModel):
    model: str
    rating: float
    ci_low: float
    ci_high: float
    votes: int
    rank_best: int
    rank_worst: int
    elo: float = Field(description="Online Elo over the same outcomes, in the order they came")
    median_tokens_per_second: float | None
    median_seconds: float | None = Field(description="Median time to a whole answer")


class LeaderboardOut(BaseModel):
    models: list[RatingOut]
    games: int


def cell_out(cell: Cell) -> CellOut:
    return CellOut(
        model=cell.model,
        prompt_index=cell.prompt_index,
        preset_index=cell.preset_index,
        run_id=cell.run_id,
        conversation_id=cell.conversation_id,
        text=cell.text,
        status=cell.status,
        error=cell.error,
        metrics=metrics_out(cell.metrics, cell.ttft_ms),
    )


def suite_run_out(view: SuiteRunView) -> SuiteRunOut:
    return SuiteRunOut(
        id=view.id,
        suite_id=view.suite.id,
        state=view.state,  # type: ignore[arg-type]
        models=view.models,
        presets=view.presets,
        judge=view.judge,
        cells=[cell_out(c) for c in view.cells],
    )


def leaderboard_out(board: Leaderboard) -> LeaderboardOut:
    return LeaderboardOut(models=[RatingOut(**vars(row)) for row in board.rows], games=board.games)


def suite_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(responses=ERRORS)

    @router.post("/suites", response_model=Created)
    def create_suite(body: SuiteIn) -> Created:
        """Store a named list of prompts."""
        prompts: list[Any] = [p if isinstance(p, str) else p.model_dump() for p in body.prompts]
        return Created(id=services().suites.create_suite(body.name, prompts))

    @router.get("/suites", response_model=list[SuiteListed])
    def list_suites() -> list[SuiteListed]:
        return [SuiteListed(**vars(s)) for s in services().suites.suites()]

    @router.get("/suites/{suite_id}", response_model=SuiteOut)
    def get_suite(suite_id: int) -> SuiteOut:
        suite = services().suites.suite(suite_id)
        return SuiteOut(
            id=suite.id, name=suite.name, prompts=[PromptIn(**vars(p)) for p in suite.prompts]
        )

    @router.post("/suites/{suite_id}/runs", response_model=Created)
    def start_run(suite_id: int, body: RunIn) -> Created:
        """Send every prompt to every model (with every preset), in the background."""
        run_id = services().suites.start_run(
            suite_id, body.models, body.model_params, body.presets, body.judge
        )
        return Created(id=run_id)

    @router.get("/suite-runs/{suite_run_id}", response_model=SuiteRunOut)
    def get_run(suite_run_id: int) -> SuiteRunOut:
        """The run's state and every cell of its matrix (waiting ones included)."""
        return suite_run_out(services().suites.run(suite_run_id))

    @router.post("/suite-runs/{suite_run_id}/stop", response_model=SuiteRunOut)
    def stop_run(suite_run_id: int) -> SuiteRunOut:
        services().suites.stop(suite_run_id)
        return suite_run_out(services().suites.run(suite_run_id))

    @router.post("/suite-runs/{suite_run_id}/rerun", response_model=SuiteRunOut)
    def rerun(suite_run_id: int, body: RerunIn) -> SuiteRunOut:
        """Run chosen cells again, or every cell without a complete answer."""
        cells = None
        if body.cells is not None:
            cells = [(c.prompt_index, c.model, c.preset_index) for c in body.cells]
        services().suites.rerun(suite_run_id, cells)
        return suite_run_out(services().suites.run(suite_run_id))

    @router.post("/suite-runs/{suite_run_id}/judge", response_model=SuiteRunOut)
    def judge(suite_run_id: int, body: JudgeIn) -> SuiteRunOut:
        """Let a judge model decide every pair of answers, in the background (apart from votes)."""
        services().suites.start_judging(suite_run_id, body.judge, body.rubric)
        return suite_run_out(services().suites.run(suite_run_id))

    @router.post("/votes", response_model=Created)
    def vote(body: VoteIn) -> Created:
        """A vote on two answers to the same prompt by two models."""
        return Created(id=services().suites.vote(body.a_run_id, body.b_run_id, body.outcome))

    @router.get("/leaderboard", response_model=LeaderboardOut)
    def leaderboard(
        source: Literal["human", "judge", "both"] = "both",
        category: str | None = None,
        suite: int | None = Query(None, description="Only votes on this suite's answers"),
        since: datetime | None = None,
        until: datetime | None = None,
        length_control: bool = Query(False, description="Answer length as a covariate"),
    ) -> LeaderboardOut:
        """Bradley-Terry ratings with 95% bootstrap intervals, rank ranges and speed."""
        board = services().suites.leaderboard(
            source, category, suite, since, until, length_controlled=length_control
        )
        return leaderboard_out(board)

    return router
