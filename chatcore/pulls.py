"""Pulls as background jobs: a pull runs in its own thread, whatever the pages do meanwhile.

The Models page, the sidebar's indicator and the REST API (/api/pulls) all read the same jobs
from memory; a pull is cancelled only by asking (`cancel`), which closes its HTTP stream and so
stops Ollama's download. Finished jobs are kept for a while so their outcome can still be shown.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatcore.errors import DashboardError, InvalidInput, NotFound
from chatcore.models import ModelManager, PullProgress

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
FINISHED_KEPT = 20  # finished jobs remembered, newest first
MAX_MODEL_NAME = 300


@dataclass(frozen=True)
class LayerView:
    digest: str
    completed: int
    total: int


@dataclass(frozen=True)
class PullView:
    """A job as it stands: a copy, safe to read while the pull goes on."""

    id: str
    host: str
    model: str
    state: str  # running | done | failed | cancelled
    status: str  # Ollama's latest status line ("pulling manifest", "success", ...)
    fraction: float
    completed: int
    total: int
    bytes_per_second: float | None
    error: str | None
    started_at: float  # epoch seconds
    finished_at: float | None
    layers: tuple[LayerView, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == RUNNING


@dataclass
class PullJob:
    id: str
    host: str
    model: str
    started_at: float = field(default_factory=time.time)
    state: str = RUNNING
    error: str | None = None
    finished_at: float | None = None
    progress: PullProgress | None = None
    cancel_asked: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def view(self) -> PullView:
        progress = self.progress or PullProgress(model=self.model, host=self.host)
        layers = tuple(
            LayerView(layer.digest, layer.completed, layer.total)
            for layer in list(progress.layers.values())
        )
        return PullView(
            id=self.id,
            host=self.host,
            model=self.model,
            state=self.state,
            status=progress.status,
            fraction=progress.fraction,
            completed=progress.completed,
            total=progress.total,
            bytes_per_second=progress.bytes_per_second,
            error=self.error,
            started_at=self.started_at,
            finished_at=self.finished_at,
            layers=layers,
        )


class PullJobs:
    """The process's pulls. One pull per (host, model) at a time: asking again joins it."""

    def __init__(self, models: ModelManager) -> None:
        self._models = models
        self._lock = threading.Lock()
        self._jobs: dict[str, PullJob] = {}

    def start(self, host: str, model: str) -> PullView:
        """Start pulling `model` onto `host` in the background; returns the job at once."""
        name = model.strip()
        if not name or len(name) > MAX_MODEL_NAME or any(c.isspace() for c in name):
            raise InvalidInput("Give a model name to pull, such as llama3.2:1b.")
        self._models.backend(host)  # an unknown or non-Ollama host is refused here, not later
        with self._lock:
            for job in self._jobs.values():
                if job.state == RUNNING and (job.host, job.model) == (host, name):
                    return job.view()
            job = PullJob(id=uuid.uuid4().hex[:12], host=host, model=name)
            job.thread = threading.Thread(
                target=self._run, args=(job,), name=f"pull-{name}", daemon=True
            )
            self._jobs[job.id] = job
            self._forget_old()
        job.thread.start()
        return job.view()

    def get(self, job_id: str) -> PullView:
        return self._job(job_id).view()

    def list(self) -> list[PullView]:
        """Every job remembered, newest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [job.view() for job in sorted(jobs, key=lambda j: j.started_at, reverse=True)]

    def running(self) -> list[PullView]:
        return [view for view in self.list() if view.running]

    def cancel(self, job_id: str) -> PullView:
        """Ask a running pull to stop (it stops at its next progress line); a finished job is
        left as it ended."""
        job = self._job(job_id)
        job.cancel_asked.set()
        return job.view()

    def wait(self, job_id: str, timeout: float | None = None) -> PullView:
        """Block until the job ends (or `timeout` seconds pass); for tests and the API."""
        job = self._job(job_id)
        if job.thread is not None:
            job.thread.join(timeout)
        return job.view()

    def close(self) -> None:
        """Cancel every running pull (the app is stopping) and give them a moment to stop."""
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.state == RUNNING]
        for job in jobs:
            job.cancel_asked.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(2)

    def _job(self, job_id: str) -> PullJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"No pull {job_id!r}: it never started here, or ended long ago.")
        return job

    def _run(self, job: PullJob) -> None:
        pulling: Iterator[PullProgress] = self._models.pull(job.host, job.model)
        try:
            for progress in pulling:
                job.progress = progress
                if job.cancel_asked.is_set():
                    break
        except DashboardError as error:
            job.error = str(error)
        except Exception as error:  # a thread has no one to raise to: keep what went wrong
            job.error = f"The pull failed: {error}"
        finally:
            pulling.close()  # closes the stream: a cancelled download stops on the server
            job.state = self._outcome(job)
            if job.state == FAILED and job.error is None:
                job.error = "The pull ended before the model was complete."
            job.finished_at = time.time()

    @staticmethod
    def _outcome(job: PullJob) -> str:
        if job.error is not None:
            return FAILED
        if job.progress is not None and job.progress.done:
            return DONE
        return CANCELLED if job.cancel_asked.is_set() else FAILED

    def _forget_old(self) -> None:
        finished = sorted(
            (job for job in self._jobs.values() if job.state != RUNNING),
            key=lambda j: j.started_at,
            reverse=True,
        )
        for job in finished[FINISHED_KEPT:]:
            del self._jobs[job.id]
