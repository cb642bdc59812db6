"""The REST twin of the Models page's hosts: GET, POST and DELETE /hosts, Ollama hosts and
OpenAI-compatible servers (vLLM, SGLang, llama.cpp's server, LM Studio, LiteLLM) alike.
Registered by `create_api` (chatcore/api/rest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from chatcore.errors import InvalidInput
from chatcore.hosts import OLLAMA, OPENAI, HostStatus
from chatcore.services import Services

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such host"},
    422: {"description": "Invalid input: nothing was stored"},
}


class HostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="`host:port` or a URL")
    kind: Literal["ollama", "openai"] = OLLAMA
    api_key: str | None = Field(
        None,
        description="OpenAI-compatible servers only: the key, or `$NAME` to read it from the "
        "environment variable NAME (then only the name is stored). Never shown back whole.",
    )


class HostOut(BaseModel):
    url: str
    kind: Literal["ollama", "openai"]
    source: Literal["environment", "added here"]
    removable: bool
    api_key: str = Field(description="As it may be shown: `…abcd`, `$NAME`, or empty")
    reachable: bool
    version: str | None
    latency_ms: float | None
    error: str | None
    in_flight: int = Field(description="Replies streaming from this host now")


def host_out(status: HostStatus) -> HostOut:
    host = status.host
    return HostOut(
        url=host.url,
        kind=host.kind,  # type: ignore[arg-type]  # OLLAMA or OPENAI
        source=host.source,  # type: ignore[arg-type]
        removable=host.removable,
        api_key=host.key_shown,
        reachable=status.reachable,
        version=status.version,
        latency_ms=status.latency_ms,
        error=status.error,
        in_flight=status.in_flight,
    )


def host_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["hosts"], responses=ERRORS)

    @router.get("/hosts", response_model=list[HostOut])
    def list_hosts() -> list[HostOut]:
        """Every host with its reachability, version and latency (asked in parallel)."""
        return [host_out(s) for s in services().hosts.statuses()]

    @router.post("/hosts", response_model=HostOut, status_code=201)
    def add_host(host: HostIn) -> HostOut:
        """Add a host; its models join the picker and the routing at once. Adding an
        OpenAI-compatible server again replaces its key."""
        if host.api_key is not None and host.kind != OPENAI:
            raise InvalidInput("An API key is for OpenAI-compatible servers (kind: openai).")
        hosts = services().hosts
        return host_out(hosts.status(hosts.add(host.url, host.kind, host.api_key)))

    @router.delete("/hosts", status_code=204)
    def remove_host(
        url: str = Query(description="The host's URL, as GET /hosts lists it"),
    ) -> Response:
        """Remove a host added here (one from OLLAMA_HOST / OLLAMA_HOSTS is 422)."""
        services().hosts.remove(url)
        return Response(status_code=204)

    return router
