"""Wires settings, the database, the backends and the chat service into one object per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chatcore.backends.base import Backend
from chatcore.backends.embedded import EmbeddedBackend, engine_installed
from chatcore.backends.embeddings import LocalEmbeddings
from chatcore.backends.embeddings import installed as embeddings_installed
from chatcore.backends.ollama import OllamaBackend
from chatcore.backends.registry import Registry
from chatcore.backups import START_WAIT_SECONDS, BackupService
from chatcore.chat import ChatService
from chatcore.compare import CompareService
from chatcore.config import Settings, load_settings
from chatcore.fitting import ContextFitter, ContextPolicy
from chatcore.gateway import Gateway
from chatcore.history import HistoryService
from chatcore.hosts import Hosts
from chatcore.knowledge import KnowledgeService
from chatcore.logs import configure_logging, stop_logging_to
from chatcore.models import ModelManager
from chatcore.presets import PresetService
from chatcore.pulls import PullJobs
from chatcore.stats import StatsService
from chatcore.storage.db import Database
from chatcore.suites import SuiteService
from chatcore.transfer import TransferService


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    chat: ChatService
    compare: CompareService
    stats: StatsService
    hosts: Hosts
    models: ModelManager
    history: HistoryService
    gateway: Gateway
    transfer: TransferService
    backups: BackupService
    knowledge: KnowledgeService
    suites: SuiteService
    presets: PresetService
    pulls: PullJobs  # pulls running in the background, whatever the pages do

    def close(self) -> None:
        self.pulls.close()
        self.suites.close()  # unfinished suite runs stay 'running', to resume on the next start
        self.backups.stop_daily()
        self.knowledge.close()
        self.chat.context.wait_for_summaries(5.0)  # a summary being written is stored first
        self.chat.close()  # reply rows being written are stored first
        self.registry.close()
        self.db.close()
        stop_logging_to(self.settings.data_dir)


def build_backends(settings: Settings) -> list[Backend]:
    backends: list[Backend] = [OllamaBackend(host) for host in settings.all_ollama_hosts()]
    if settings.embedded and engine_installed():
        backends.append(EmbeddedBackend(settings.embedded_models, n_ctx=settings.embedded_ctx))
    return backends


def open_services(settings: Settings | None = None) -> Services:
    settings = settings or load_settings()
    configure_logging(settings.data_dir, settings.log_level, settings.secrets())
    db = Database(settings.db_path)
    registry = Registry(build_backends(settings))
    knowledge = KnowledgeService(
        db, registry, LocalEmbeddings() if embeddings_installed() else None
    )
    policy = ContextPolicy(settings.context_max, settings.context_overflow)
    chat = ChatService(db, registry, knowledge, ContextFitter(policy))
    hosts = Hosts(db, registry, settings)
    hosts.register_added()  # the hosts added on the Models page in earlier sessions
    suites = SuiteService(db, chat, registry, settings.ollama_num_parallel)
    suites.resume_interrupted()  # suite runs a crash or restart stopped in the middle
    models = ModelManager(registry)
    return Services(
        settings,
        db,
        registry,
        chat,
        CompareService(db, chat),
        StatsService(db),
        hosts,
        models,
        HistoryService(db),
        Gateway(registry),
        TransferService(db),
        BackupService(db, settings.backups_keep),
        knowledge,
        suites,
        PresetService(db),
        PullJobs(models),
    )


# The process's one Services, shared by the pages (through ui.services()) and the REST API:
# DuckDB lets only one process open the file, and one Database per process keeps it simple.
_shared: Services | None = None
_shared_lock = threading.Lock()


def shared_services() -> Services:
    """The process-wide Services, opened on first use; raises DatabaseLocked until it can open."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = open_services()
            _shared.backups.start_daily(first_wait=START_WAIT_SECONDS)
        return _shared


def close_shared_services() -> None:
    """Close the process-wide Services; the next shared_services() opens them afresh."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None
