"""The REST twin of History's search: the conversations whose title or messages contain words,
each with the message it matched first (the one History's jump opens Chat at).

Registered by `create_api` (chatcore/api/rest.py); a plain `def`, so FastAPI runs it on a worker
thread. The snippet is plain text: a client marks the matches itself (History draws them bold).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chatcore.history import SearchHit, SearchResult
from chatcore.services import Services

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input"},
    503: {"description": "The database is not available"},
}


class SearchHitOut(BaseModel):
    conversation_id: str
    title: str
    updated_at: datetime
    snippet: str
    matching_messages: int
    message_id: int | None  # the first matching message; None when only the title matched


class SearchOut(BaseModel):
    query: str
    total: int
    complete: bool  # False: only recent conversations were searched; total is a lower bound
    hits: list[SearchHitOut]


def hit_out(hit: SearchHit) -> SearchHitOut:
    return SearchHitOut(
        conversation_id=hit.id,
        title=hit.title,
        updated_at=hit.updated_at,
        snippet=hit.snippet,
        matching_messages=hit.matching_messages,
        message_id=hit.message_id,
    )


def search_out(query: str, result: SearchResult) -> SearchOut:
    hits = [hit_out(hit) for hit in result.hits]
    return SearchOut(query=query, total=result.total, complete=result.complete, hits=hits)


def search_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter()

    @router.get("/search", response_model=SearchOut, responses=ERRORS)
    def search(
        q: str = Query(..., min_length=1, max_length=500, description="Words to find"),
    ) -> SearchOut:
        """Conversations whose title or visible messages contain `q` (ignoring case), the most
        recently active first, at most 50."""
        return search_out(q, services().history.search(q))

    return router
