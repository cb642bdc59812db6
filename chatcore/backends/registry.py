"""All backends' models in one list, and which backend answers a given model."""

from __future__ import annotations

from collections.abc import Sequence

from chatcore.backends.base import Backend, BackendUnavailable, ModelInfo, ModelNotFound


class ModelListing:
    """The models every backend offers right now, and the backends that did not answer."""

    def __init__(self, models: list[ModelInfo], unreachable: dict[str, str]) -> None:
        self.models = models
        self.unreachable = unreachable  # host -> message for the user


class Registry:
    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)

    def list_models(self) -> ModelListing:
        models: list[ModelInfo] = []
        unreachable: dict[str, str] = {}
        for backend in self.backends:
            try:
                models.extend(backend.list_models())
            except BackendUnavailable as error:
                unreachable[backend.host] = str(error)
        return ModelListing(models, unreachable)

    def resolve(self, model: str) -> tuple[Backend, ModelInfo]:
        """The backend that serves `model`; raises ModelNotFound or BackendUnavailable."""
        unavailable: BackendUnavailable | None = None
        for backend in self.backends:
            try:
                for info in backend.list_models():
                    if same_model(info.name, model):
                        return backend, info
            except BackendUnavailable as error:
                unavailable = unavailable or error
        if unavailable is not None:
            raise unavailable
        raise ModelNotFound(model)


def same_model(listed: str, asked: str) -> bool:
    """Ollama treats `llama3.2` and `llama3.2:latest` as the same model."""
    return listed == asked or (":" not in asked and listed == f"{asked}:latest")
