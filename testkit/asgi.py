"""The REST API mounted at /api as the dashboard's server mounts it, for in-process clients."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from chatcore.api.rest import create_api
from chatcore.api.security import own_origins
from chatcore.services import Services

PORT = 8501  # the dashboard's port the mounted API takes its own origins from


def mounted(services: Services, token: str | None = None) -> Starlette:
    return Starlette(
        routes=[Mount("/api", create_api(lambda: services, origins=own_origins(PORT), token=token))]
    )
