"""Wires settings, the database, the backends and the chat service into one object per process."""

from __future__ import annotations

from dataclasses import dataclass

from chatcore.backends.base import Backend
from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.config import Settings, load_settings
from chatcore.storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    chat: ChatService

    def close(self) -> None:
        self.db.close()


def build_backends(settings: Settings) -> list[Backend]:
    return [OllamaBackend(settings.ollama_host)]


def open_services(settings: Settings | None = None) -> Services:
    settings = settings or load_settings()
    db = Database(settings.db_path)
    registry = Registry(build_backends(settings))
    return Services(settings, db, registry, ChatService(db, registry))
