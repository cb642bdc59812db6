"""Presets: named sets of the parameters a user tunes, and the ones each model last ran with.

A preset holds a system prompt, temperature, top p, max tokens, think level and context size
(the GenerationParams fields in PRESET_FIELDS); the sidebar picks one, the Models page manages
them, the REST API has them at /api/presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chatcore.errors import InvalidInput, NotFound
from chatcore.params import GenerationParams
from chatcore.storage import presets as store
from chatcore.storage.db import Database
from chatcore.types import canonical_model

PRESET_FIELDS = ("system_prompt", "temperature", "top_p", "max_tokens", "think", "context_size")
NAME_MAX_CHARS = 60


@dataclass(frozen=True)
class Preset:
    name: str
    params: dict[str, Any]  # PRESET_FIELDS, each present, validated as GenerationParams

    def generation(self) -> GenerationParams:
        return GenerationParams(**self.params)


class PresetService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[Preset]:
        with self.db.cursor() as cur:
            return [Preset(name, preset_values(params)) for name, params in store.list_presets(cur)]

    def get(self, name: str) -> Preset:
        with self.db.cursor() as cur:
            params = store.get_preset(cur, name)
        if params is None:
            raise NotFound(f"There is no preset named '{name}'.")
        return Preset(name, preset_values(params))

    def save(self, name: str, params: dict[str, Any]) -> Preset:
        """Create or replace the preset `name`; InvalidInput (nothing stored) for a bad name or
        a value out of its range. Fields other than PRESET_FIELDS are not kept."""
        preset = Preset(valid_name(name), preset_values(params))
        with self.db.transaction() as cur:
            store.save_preset(cur, preset.name, preset.params)
        return preset

    def delete(self, name: str) -> None:
        with self.db.transaction() as cur:
            if not store.delete_preset(cur, name):
                raise NotFound(f"There is no preset named '{name}'.")

    def last_params(self, model: str) -> dict[str, Any] | None:
        """The preset fields `model` last ran with from the dashboard; None if it never ran."""
        with self.db.cursor() as cur:
            options = store.last_options(cur, canonical_model(model))
            if options is None and canonical_model(model) != model:
                options = store.last_options(cur, model)
        if options is None:
            return None
        try:
            return preset_values(options)
        except InvalidInput:
            return None  # options stored by an older build that no longer validate


def preset_values(params: dict[str, Any]) -> dict[str, Any]:
    """The preset fields of `params`, checked against GenerationParams' ranges (missing ones
    take its defaults)."""
    if not isinstance(params, dict):
        raise InvalidInput("A preset's parameters are an object.")
    chosen = {name: params[name] for name in PRESET_FIELDS if name in params}
    try:
        checked = GenerationParams(**chosen)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInput(f"The preset's parameters are not valid: {problems}.") from error
    return {name: getattr(checked, name) for name in PRESET_FIELDS}


def valid_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A preset needs a name.")
    name = " ".join(name.split())
    if len(name) > NAME_MAX_CHARS:
        raise InvalidInput(f"A preset's name is at most {NAME_MAX_CHARS} characters.")
    return name
