"""The REST twin of the Models page's per-model actions on an Ollama host: what is loaded
(GET /models/running), a model's card (GET /models/card), preload and unload
(POST /models/load, /models/unload) and delete (DELETE /models). Registered by `create_api`
(chatcore/api/rest.py).

Host URLs contain `/` and model names `:` (sometimes `/`), so both travel as query parameters or
in the body, never in the path: nothing here can be mistaken for /models/{model}/last-params.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from chatcore.errors import InvalidInput, NotFound
from chatcore.hosts import OPENAI
from chatcore.models import PRELOAD_KEEP_ALIVE, ModelCard, RunningModel, param_defaults
from chatcore.services import Services

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such host, or the model is not on it"},
    422: {"description": "Invalid input, or an OpenAI-compatible server: nothing was done"},
    503: {"description": "The host is not answering"},
}

# Go's time.ParseDuration, as Ollama reads keep_alive: "30m", "2h", "1h30m"; negative: forever.
DURATION = r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$"
HOST_HELP = "An Ollama host as GET /hosts lists it; the main one when left out"
MODEL_HELP = "An installed model's name, e.g. llama3.2:latest"


class ModelOnHost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=300, description=MODEL_HELP)
    host: str | None = Field(None, description=HOST_HELP)


class LoadIn(ModelOnHost):
    keep_alive: str = Field(
        PRELOAD_KEEP_ALIVE,
        pattern=DURATION,
        description="How long it stays loaded when unused, as Ollama reads it: `5m`, `2h`; "
        "negative (`-1m`): until unloaded",
    )


class RunningOut(BaseModel):
    name: str
    host: str
    size_bytes: int = Field(description="Memory it takes, VRAM included")
    vram_bytes: int
    context_length: int | None = Field(description="The context window actually allocated")
    expires_at: datetime | None = Field(description="When it unloads if left unused")


class CardOut(BaseModel):
    name: str
    host: str
    capabilities: list[str] = Field(description="As Ollama reports them: vision, tools, ...")
    context_length: int | None = Field(description="The context length it was trained for")
    parameters: dict[str, list[str]] = Field(
        description="The Modelfile's PARAMETER lines by name (a name like stop may repeat)"
    )
    system: str = Field(description="The Modelfile's SYSTEM prompt, empty when it has none")
    defaults: dict[str, Any] = Field(
        description="What the page's *Use these in the sidebar* sets: the model's own "
        "parameters as /chat's model_params fields (temperature, top_p, max_tokens, "
        "system_prompt)"
    )


def running_out(model: RunningModel) -> RunningOut:
    return RunningOut(**vars(model))


def card_out(card: ModelCard) -> CardOut:
    return CardOut(
        name=card.name,
        host=card.host,
        capabilities=list(card.capabilities),
        context_length=card.context_length,
        parameters=card.parameters,
        system=card.system,
        defaults=param_defaults(card),
    )


def model_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["models"], responses=ERRORS)

    def ollama_host(host: str | None) -> str:
        """The host to act on, refused in the client's terms before any call: the chatcore
        call alone would answer 503 "not one of the Ollama hosts" for a typo too."""
        if host is None:
            return services().settings.all_ollama_hosts()[0]
        known = next((h for h in services().hosts.all() if h.url == host), None)
        if known is None:
            raise NotFound(f"No host {host}: GET /hosts lists them.")
        if known.kind == OPENAI:
            raise InvalidInput(
                f"{host} is an OpenAI-compatible server: it lists and serves its models; "
                "load, unload, delete them and read their cards on the server itself."
            )
        return host

    def loaded(host: str) -> list[RunningOut]:
        return [running_out(m) for m in services().models.running(host)]

    @router.get("/models/running", response_model=list[RunningOut])
    def running(host: str | None = Query(None, description=HOST_HELP)) -> list[RunningOut]:
        """The models loaded in the host's memory, as the page's *Loaded in memory* table."""
        return loaded(ollama_host(host))

    @router.get("/models/card", response_model=CardOut)
    def card(
        model: str = Query(min_length=1, description=MODEL_HELP),
        host: str | None = Query(None, description=HOST_HELP),
    ) -> CardOut:
        """A model's card: capabilities, trained context length, its own parameters and system
        prompt (family, size and quantization are in GET /models)."""
        return card_out(services().models.card(ollama_host(host), model))

    @router.post("/models/load", response_model=list[RunningOut])
    def load(body: LoadIn) -> list[RunningOut]:
        """Load a model now (the page's *Preload*), so the first message does not wait for
        it. Answers what the host has loaded afterwards."""
        host = ollama_host(body.host)
        services().models.preload(host, body.model, body.keep_alive)
        return loaded(host)

    @router.post("/models/unload", response_model=list[RunningOut])
    def unload(body: ModelOnHost) -> list[RunningOut]:
        """Free a model's memory now; one not loaded is left as it is. Answers what the host
        still has loaded."""
        host = ollama_host(body.host)
        services().models.unload(host, body.model)
        return loaded(host)

    @router.delete("/models", status_code=204)
    def delete(
        model: str = Query(min_length=1, description=MODEL_HELP),
        host: str | None = Query(None, description=HOST_HELP),
    ) -> Response:
        """Delete a model from the host's disk; the pickers and GET /models drop it at once."""
        services().models.delete(ollama_host(host), model)
        return Response(status_code=204)

    return router
