"""The REST twins of the Compare page: POST /compare sends one prompt to 2 to 4 models side by
side, POST /compare/{round_id}/vote judges the round, GET /compare/standings is the page's
leaderboard. Registered by `create_api` (chatcore/api/rest.py).

A round goes through `CompareService.start`, as the page's does: every column is an ordinary
conversation sent by `ChatService.send`, stored with its status (a column that fails keeps its
text and does not cost the others theirs). The endpoints are plain `def`s: FastAPI runs them on
worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from chatcore.api.schemas import MetricsOut, metrics_out
from chatcore.chat import ChatService, Reply
from chatcore.collaboration import parse_collaboration
from chatcore.compare import BEST, MAX_MODELS, MIN_MODELS, Column, Standing, valid_models
from chatcore.errors import InvalidInput, NotFound
from chatcore.params import GenerationParams
from chatcore.services import Services
from chatcore.types import FINISHED, canonical_model

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown model or compare round"},
    422: {"description": "Invalid input: nothing was stored"},
    503: {"description": "The backend or the database is not available"},
}


class CompareIn(BaseModel):
    """What the Compare page sends: the prompt, the picked models and the sidebar's parameters."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="One prompt for every model")
    models: list[str] = Field(
        min_length=MIN_MODELS,
        max_length=MAX_MODELS,
        description="2 to 4 different installed models (or collaborations such as "
        "`fusion(a + b -> c)`), one column each, labelled A, B, … in this order unless blind",
    )
    model_params: GenerationParams = Field(
        default_factory=GenerationParams,
        description="Every column's parameters (the sidebar's on the page), as in POST /chat",
    )
    blind: bool = Field(
        False,
        description="Shuffle the models over the columns and count the vote as blind (this "
        "answer still names them: blind is for a person voting from the Compare page)",
    )


class CompareEntryOut(BaseModel):
    """One column: its letter, and the reply in the shape POST /chat answers."""

    label: str = Field(description="The column's letter, A to D: what a vote names")
    entry: str = Field(description="The model or collaboration, as the request named it")
    model: str = Field(description="The model that wrote this answer")
    reply: str
    thinking: str = Field("", description="The model's reasoning, apart from the reply")
    conversation_id: str | None = Field(description="null: refused before anything was stored")
    message_id: int | None
    backend: str | None
    host: str | None
    status: Literal["complete", "stopped", "error"]
    error: str | None
    metrics: MetricsOut | None  # type: ignore[valid-type]
    request_id: str | None = Field(None, description="This reply's id in the dashboard's log")


class CompareOut(BaseModel):
    round_id: int = Field(description="What POST /compare/{round_id}/vote and the page use")
    prompt: str
    blind: bool
    entries: list[CompareEntryOut]


class CompareVoteIn(BaseModel):
    """The page's vote buttons: the best column, a tie, or all bad."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["best", "tie", "all_bad"]
    winner_label: str | None = Field(None, description="With outcome best: the column's letter")


class CompareVoteOut(BaseModel):
    round_id: int
    outcome: str
    winner_label: str | None


class StandingOut(BaseModel):
    model: str
    rating: float = Field(description="Elo from 1000 (K 32), in the order the votes were cast")
    wins: int
    votes: int
    win_rate: float


# --- checks before anything is written ---


def distinct_models(models: Sequence[str]) -> list[str]:
    """The models as the page would run them, refusing one named twice (`phi3` and
    `phi3:latest` too): the page merges those silently, a script more likely made a mistake."""
    picked = valid_models(models)
    if len(picked) != len(models):
        raise InvalidInput(f"Name each model once: {', '.join(repeated(models))} came twice.")
    return picked


def repeated(models: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    twice: list[str] = []
    for model in models:
        collaboration = parse_collaboration(model)
        key = canonical_model(collaboration.name if collaboration else model)
        if key in seen:
            twice.append(model)
        seen.add(key)
    return twice


def require_installed(chat: ChatService, models: Sequence[str]) -> None:
    """Every model (each of a collaboration's too) must be installed: the round is stored
    before its columns send, so an unknown model would otherwise leave a round behind. Asks
    as a send does, so the refusal is POST /chat's (404 naming the model, 503 for no host)."""
    for entry in models:
        collaboration = parse_collaboration(entry)
        for model in collaboration.models if collaboration else [entry]:
            chat.abilities(model)


# --- shaping chatcore's records into answers ---


def entry_out(column: Column) -> CompareEntryOut:
    reply = column.reply
    if reply is None:  # refused before its turn was stored (or a collaboration's step failed)
        return CompareEntryOut(
            label=column.label,
            entry=column.model,
            model=column.model,
            reply=column.text,
            thinking=column.thinking,
            conversation_id=None,
            message_id=None,
            backend=None,
            host=None,
            status="error",
            error=column.error_message,
            metrics=None,
        )
    return CompareEntryOut(
        label=column.label,
        entry=column.model,
        model=reply.model,
        reply=reply.text,
        thinking=reply.thinking,
        conversation_id=reply.conversation_id,
        message_id=stored_message_id(reply),
        backend=reply.backend,
        host=reply.host,
        status=reply.status if reply.status in FINISHED else "error",  # type: ignore[arg-type]
        error=column.error_message,
        metrics=metrics_out(reply.metrics, reply.ttft_ms),
        request_id=reply.request_id,
    )


def stored_message_id(reply: Reply) -> int | None:
    """The reply's message, None when its rows could not be written (the error says why)."""
    return None if reply.rows.exception() is not None else reply.message_id


def standing_out(standing: Standing) -> StandingOut:
    return StandingOut(
        model=standing.model,
        rating=standing.rating,
        wins=standing.wins,
        votes=standing.votes,
        win_rate=standing.win_rate,
    )


def compare_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["compare"], responses=ERRORS)

    @router.post(
        "/compare",
        response_model=CompareOut,
        responses={502: {"model": CompareOut, "description": "Every model failed"}},
    )
    def compare(request: CompareIn) -> Any:
        """Send one prompt to every model at once and answer once all have finished.

        Each column is stored as a conversation of its own (History shows it), with its
        status: one model failing mid-reply keeps its text as an error and costs the others
        nothing. Bad input is refused before anything is stored. 502 only when every model
        failed.
        """
        models = distinct_models(request.models)
        require_installed(services().chat, models)
        live = services().compare.start(request.prompt, models, request.model_params, request.blind)
        answer = CompareOut(
            round_id=live.id,
            prompt=live.prompt,
            blind=live.blind,
            entries=[entry_out(column) for column in live.wait()],
        )
        failed = all(entry.status == "error" for entry in answer.entries)
        return JSONResponse(jsonable_encoder(answer), status_code=502 if failed else 200)

    @router.get("/compare/standings", response_model=list[StandingOut])
    def standings(
        blind_only: bool = Query(False, description="Only the votes on blind rounds"),
    ) -> list[StandingOut]:
        """The Compare page's leaderboard: per model its Elo rating, wins and votes."""
        return [standing_out(s) for s in services().compare.standings(blind_only)]

    @router.post("/compare/{round_id}/vote", response_model=CompareVoteOut, status_code=201)
    def vote(round_id: int, body: CompareVoteIn) -> CompareVoteOut:
        """Vote on a finished round, once: the best column (`winner_label`), a tie, or all bad.
        A failed answer takes no part (it can't win)."""
        if services().compare.round(round_id) is None:
            raise NotFound(f"Compare round {round_id} was not found.")
        services().compare.vote(round_id, body.outcome, body.winner_label)
        winner = body.winner_label if body.outcome == BEST else None  # as the vote is stored
        return CompareVoteOut(round_id=round_id, outcome=body.outcome, winner_label=winner)

    return router
