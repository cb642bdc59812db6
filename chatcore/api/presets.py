"""The REST twins of the sidebar's presets and the Models page's preset list: GET, POST and
DELETE /presets, and GET /models/{model}/last-params (what the sidebar brings back when a
model is picked again). Registered by `create_api` (chatcore/api/rest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from chatcore.errors import NotFound
from chatcore.params import MAX_TOKENS_DEFAULT, TEMPERATURE_DEFAULT, TOP_P_DEFAULT, ThinkLevel
from chatcore.presets import Preset
from chatcore.services import Services

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No preset of that name, or the model never ran"},
    422: {"description": "Invalid input: nothing was stored"},
}


class PresetIn(BaseModel):
    """A preset: missing values take the sidebar's defaults. Ranges are checked by the service
    (GenerationParams), so a bad value is a 422 with the field named."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    system_prompt: str = ""
    temperature: float = TEMPERATURE_DEFAULT
    top_p: float = TOP_P_DEFAULT
    max_tokens: int = MAX_TOKENS_DEFAULT
    think: StrictBool | ThinkLevel | None = None
    context_size: int | None = Field(
        None, description="The largest context window; null: the app's cap"
    )


class PresetOut(BaseModel):
    name: str
    system_prompt: str
    temperature: float
    top_p: float
    max_tokens: int
    think: bool | str | None
    context_size: int | None


class LastParamsOut(BaseModel):
    model: str
    system_prompt: str
    temperature: float
    top_p: float
    max_tokens: int
    think: bool | str | None
    context_size: int | None


def preset_out(preset: Preset) -> PresetOut:
    return PresetOut(name=preset.name, **preset.params)


def preset_routes(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter(tags=["presets"], responses=ERRORS)

    @router.get("/presets", response_model=list[PresetOut])
    def list_presets() -> list[PresetOut]:
        return [preset_out(p) for p in services().presets.list()]

    @router.get("/presets/{name}", response_model=PresetOut)
    def get_preset(name: str) -> PresetOut:
        return preset_out(services().presets.get(name))

    @router.post("/presets", response_model=PresetOut, status_code=201)
    def save_preset(preset: PresetIn) -> PresetOut:
        """Create a preset, or replace the one with that name."""
        values = preset.model_dump(exclude={"name"})
        return preset_out(services().presets.save(preset.name, values))

    @router.delete("/presets/{name}", status_code=204)
    def delete_preset(name: str) -> Response:
        services().presets.delete(name)
        return Response(status_code=204)

    @router.get("/models/{model:path}/last-params", response_model=LastParamsOut)
    def last_params(model: str) -> LastParamsOut:
        """The parameters `model` last ran with from the dashboard."""
        values = services().presets.last_params(model)
        if values is None:
            raise NotFound(f"{model} has not answered from the dashboard yet.")
        return LastParamsOut(model=model, **values)

    return router
