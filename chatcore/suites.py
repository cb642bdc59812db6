"""Prompt suites: a named list of prompts replayed against several models and presets, a
pairwise vote on any two answers to the same prompt, and the Bradley-Terry leaderboard.

Every cell (prompt × model × preset) is sent through `ChatService.send`, so it is an ordinary
conversation that History and Stats see. A run keeps every host as busy as it serves in parallel
(`parallel_per_host`, 1 by default as Ollama's OLLAMA_NUM_PARALLEL=1), never more. A run the app
stopped in the middle (a crash, a restart) is still 'running' in the database and is resumed when
the services open: only the cells without a complete answer are sent again.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chatcore import bradley_terry as bt
from chatcore.backends.embedded import PARALLEL as EMBEDDED_SLOTS
from chatcore.backends.registry import Registry, same_model
from chatcore.chat import ChatService, Reply, valid_message
from chatcore.collaboration import CollaborationRun, parse_collaboration
from chatcore.errors import DashboardError, InvalidInput, ModelNotFound, NotFound
from chatcore.params import GenerationParams
from chatcore.storage import suites as store
from chatcore.storage.db import Database
from chatcore.storage.suites import StoredCell, Suite, SuitePrompt, SuiteRunRow, SuiteSummary
from chatcore.types import Metrics, RunStatus

__all__ = ["StoredCell", "Suite", "SuitePrompt", "SuiteRunRow", "SuiteSummary"]

MAX_PROMPTS = 1000
MAX_NAME_CHARS = 200
MAX_MODELS = 16
MAX_PRESETS = 8
DEFAULT_SEED = 42  # a suite run's answers repeat when it runs again with the same seed
EMBEDDED_HOST = "local"
WAIT_SECONDS = 0.01  # the dispatcher looks again this often when every host is full: a host is
# free again as soon as its reply ends, before that reply is stored
CLOSE_WAIT_SECONDS = 5.0

RUNNING, DONE, STOPPED = "running", "done", "stopped"
# A pairwise vote: the first answer better, the second, a tie, or both bad (a tie as well).
A, B, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"
OUTCOMES = (A, B, TIE, BOTH_BAD)
SCORES = {A: bt.A_WINS, B: bt.B_WINS, TIE: bt.TIE, BOTH_BAD: bt.TIE}
SOURCES = {"human": ("human",), "judge": ("judge",), "both": ("human", "judge")}

# The judge's rubric, shown on the page and stored with every verdict.
DEFAULT_RUBRIC = (
    "You are judging two answers to the same question. Prefer the answer that is correct, "
    "answers what was asked, and is clear; length is not a merit in itself. If a reference "
    "answer is given, judge correctness against it."
)
JUDGE_PARAMS = GenerationParams(temperature=0.0, max_tokens=20, seed=DEFAULT_SEED)
VERDICT = re.compile(r"\b(BOTH_BAD|TIE|A|B)\b")

CellKey = tuple[int, str, int]  # (prompt index, model, preset index)


# --- reading prompts: typed, CSV or JSONL ---


def suite_prompts(items: Iterable[str | Mapping[str, Any]]) -> list[SuitePrompt]:
    """Prompts as text, or as {"prompt", "category", "reference"}; raises InvalidInput."""
    prompts = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, Mapping):
            raise InvalidInput(f"Prompt {number} is neither text nor an object with a prompt.")
        unknown = set(item) - {"prompt", "category", "reference"}
        if unknown:
            raise InvalidInput(f"Prompt {number} has unknown fields: {', '.join(sorted(unknown))}.")
        text = item.get("prompt")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"Prompt {number} is empty.")
        valid_message(text)
        prompts.append(
            SuitePrompt(
                text, optional_text(item.get("category")), optional_text(item.get("reference"))
            )
        )
    if not prompts:
        raise InvalidInput("A suite needs at least one prompt.")
    if len(prompts) > MAX_PROMPTS:
        raise InvalidInput(f"A suite holds at most {MAX_PROMPTS} prompts ({len(prompts)} given).")
    return prompts


def optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidInput("A category or reference answer is text.")
    return value.strip()


def prompts_from_lines(text: str) -> list[SuitePrompt]:
    """One prompt per non-empty line, as typed into the page."""
    return suite_prompts(line for line in text.splitlines() if line.strip())


def prompts_from_csv(text: str) -> list[SuitePrompt]:
    """A CSV file with a `prompt` column (and optional `category`, `reference`), or without a
    header: the first column is the prompt."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise InvalidInput("The CSV file has no rows.")
    header = [cell.strip().lower() for cell in rows[0]]
    if "prompt" in header:
        columns = {
            name: header.index(name)
            for name in ("prompt", "category", "reference")
            if name in header
        }
        return suite_prompts(
            {name: row[i] if i < len(row) else None for name, i in columns.items()}
            for row in rows[1:]
        )
    return suite_prompts(row[0] for row in rows)


def prompts_from_jsonl(text: str) -> list[SuitePrompt]:
    """One JSON value per line: a string, or {"prompt", "category", "reference"}."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidInput(f"Line {number} is not JSON: {error.msg}.") from error
    return suite_prompts(items)


# --- the judge: each pair twice, the order swapped, counted only when both orders agree ---


def judge_prompt(rubric: str, question: str, reference: str | None, first: str, second: str) -> str:
    parts = [rubric, f"Question:\n{question}"]
    if reference:
        parts.append(f"Reference answer:\n{reference}")
    parts += [f"Answer A:\n{first}", f"Answer B:\n{second}"]
    parts.append("Reply with exactly one word: A, B, TIE (equally good) or BOTH_BAD.")
    return "\n\n".join(parts)


def parse_verdict(text: str) -> str | None:
    """The judge's verdict as an outcome (a, b, tie, both_bad), None when it gave none."""
    match = VERDICT.search(text.upper())
    return match.group(1).lower() if match else None


def swapped(outcome: str | None) -> str | None:
    """An outcome given with the answers in the other order, in the first order's terms."""
    return {A: B, B: A}.get(outcome or "", outcome)


def agreed_outcome(first: str | None, second_swapped: str | None) -> str | None:
    """The verdict when the judge said the same with the answers in both orders, else None
    (a judge that prefers whatever comes first cancels itself out)."""
    second = swapped(second_swapped)
    return first if first is not None and first == second else None


# --- what a caller sees of a run ---


@dataclass(frozen=True)
class Cell:
    prompt_index: int
    model: str
    preset_index: int
    run_id: int | None
    conversation_id: str | None
    text: str
    status: str  # waiting | streaming | complete | stopped | error
    error: str | None
    ttft_ms: float | None
    metrics: Metrics


@dataclass(frozen=True)
class SuiteRunView:
    id: int
    suite: Suite
    models: list[str]
    presets: list[GenerationParams]
    judge: str | None
    state: str
    created_at: datetime
    cells: list[Cell]  # every cell of the matrix, waiting ones included

    def cell(self, prompt_index: int, model: str, preset_index: int = 0) -> Cell | None:
        return next(
            (
                c
                for c in self.cells
                if (c.prompt_index, c.model, c.preset_index) == (prompt_index, model, preset_index)
            ),
            None,
        )


@dataclass(frozen=True)
class BoardRow:
    model: str
    rating: float
    ci_low: float
    ci_high: float
    votes: int
    rank_best: int
    rank_worst: int
    elo: float
    median_tokens_per_second: float | None
    median_seconds: float | None


@dataclass(frozen=True)
class Leaderboard:
    rows: list[BoardRow]
    games: int


# --- a run in progress ---


@dataclass
class LiveCell:
    key: CellKey
    parts: list[str] = field(default_factory=list)
    reply: Reply | None = None


class SuiteRunner:
    """Sends a run's missing cells, as many at a time as the hosts serve, on threads of its own."""

    def __init__(
        self,
        service: SuiteService,
        row: SuiteRunRow,
        prompts: list[SuitePrompt],
        keys: list[CellKey],
    ) -> None:
        self.id = row.id
        self._judge = row.judge
        self._service = service
        self._prompts = prompts
        self._presets = [GenerationParams(**p) for p in row.presets]
        self._pending: deque[CellKey] = deque(keys)
        self._live: dict[CellKey, LiveCell] = {}
        self._streams: list[threading.Thread] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._closing = False  # the app is closing: leave the run 'running', to resume
        self._hosts: dict[str, list[str]] = {}
        self._collaborating = 0  # collaboration cells under way (each waits for room per step)
        self._thread = threading.Thread(target=self._run, name=f"suite-run-{row.id}", daemon=True)

    def start(self) -> SuiteRunner:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def live_text(self, key: CellKey) -> str | None:
        live = self._live.get(key)
        return None if live is None else "".join(live.parts)

    def stop(self, closing: bool = False) -> None:
        self._closing = closing
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._hosts = self._service.hosts_by_model()
            self._dispatch()
        finally:
            for thread in list(self._streams):
                thread.join()
            if not self._closing and not self._stop.is_set() and self._judge:
                self._service.judge_run(self.id, self._judge, stop=self._stop)
            if not self._closing:
                self._service.finish(self.id, STOPPED if self._stop.is_set() else DONE)

    def _dispatch(self) -> None:
        while self._pending and not self._stop.is_set():
            with self._changed:
                key = self._next_ready()
                if key is None:
                    self._changed.wait(WAIT_SECONDS)
                    continue
            self._send(key)

    def _next_ready(self) -> CellKey | None:
        """The first pending cell whose model has a host with room (or no known host: it is
        sent at once and fails with the reason)."""
        for key in self._pending:
            if self._ready(key[1]):
                self._pending.remove(key)
                return key
        return None

    def _ready(self, model: str) -> bool:
        collaboration = parse_collaboration(model)
        if collaboration is None:
            return self._has_room(model)
        if self._collaborating >= sum(self._service.capacity(h) for h in self._all_hosts()):
            return False
        return any(self._has_room(m) for m in collaboration.models)

    def _has_room(self, model: str) -> bool:
        hosts = self._hosts.get(model, [])
        return not hosts or any(self._service.has_room(host) for host in hosts)

    def _all_hosts(self) -> set[str]:
        return {host for hosts in self._hosts.values() for host in hosts} or {"none"}

    def _wait_for_room(self, model: str) -> bool:
        """Block until a host of `model` has room; False once the run is stopped."""
        while not self._stop.is_set():
            if self._has_room(model):
                return True
            with self._changed:
                self._changed.wait(WAIT_SECONDS)
        return False

    def _send(self, key: CellKey) -> None:
        prompt_index, model, preset_index = key
        if parse_collaboration(model) is not None:
            with self._changed:
                self._collaborating += 1
            thread = threading.Thread(target=self._collaborate, args=(key,), daemon=True)
            self._streams.append(thread)
            thread.start()
            return
        chat = self._service.chat
        try:  # on this thread: the chosen host counts as busy before the next cell is picked
            stream = chat.send(
                None, self._prompts[prompt_index].prompt, model, self._presets[preset_index]
            )
        except DashboardError as error:
            self._service.record_cell(self.id, key, None, None, str(error))
            return
        live = self._live[key] = LiveCell(key, reply=stream.reply)
        self._service.record_cell(self.id, key, stream.reply.conversation_id, stream.reply.run_id)
        thread = threading.Thread(target=self._stream, args=(stream, live), daemon=True)
        self._streams.append(thread)
        thread.start()

    def _collaborate(self, key: CellKey) -> None:
        """A collaboration cell: its first steps, then its last one streamed as the answer."""
        prompt_index, name, preset_index = key
        collaboration = parse_collaboration(name)
        assert collaboration is not None
        steps = CollaborationRun(
            self._service.chat,
            collaboration,
            self._prompts[prompt_index].prompt,
            self._presets[preset_index],
            self._service.record_step(name),
            self._wait_for_room,
            self._stop,
        )
        live = self._live[key] = LiveCell(key, parts=steps.parts)
        try:
            try:
                role, prompt = steps.last_prompt(steps.first_steps())
                stream = steps.start_last(role, prompt)
            except DashboardError as error:  # StepFailed included: the cell fails, says why
                self._service.record_cell(self.id, key, None, None, str(error))
                return
            self._service.record_cell(
                self.id, key, stream.reply.conversation_id, stream.reply.run_id
            )
            live.parts.clear()
            self._stream(stream, live)
        finally:
            self._live.pop(key, None)
            with self._changed:
                self._collaborating -= 1
                self._changed.notify_all()

    def _stream(self, stream: Any, live: LiveCell) -> None:
        try:
            for piece in stream:
                live.parts.append(piece)
                if self._stop.is_set():
                    break
        finally:
            stream.close()  # a break stores the reply as stopped
            self._live.pop(live.key, None)
            with self._changed:
                self._changed.notify_all()


# --- the service ---


class SuiteService:
    def __init__(
        self, db: Database, chat: ChatService, registry: Registry, parallel_per_host: int = 1
    ) -> None:
        self.db = db
        self.chat = chat
        self.registry = registry
        self.parallel_per_host = max(1, parallel_per_host)
        self._runners: dict[int, SuiteRunner] = {}
        self._lock = threading.Lock()

    # --- suites ---

    def create_suite(
        self, name: str, prompts: Sequence[str | Mapping[str, Any] | SuitePrompt]
    ) -> int:
        name = valid_name(name)
        items = [
            {"prompt": p.prompt, "category": p.category, "reference": p.reference}
            if isinstance(p, SuitePrompt)
            else p
            for p in prompts
        ]
        checked = suite_prompts(items)
        with self.db.transaction() as cur:
            return store.create_suite(cur, name, checked)

    def suites(self) -> list[SuiteSummary]:
        with self.db.cursor() as cur:
            return store.list_suites(cur)

    def suite(self, suite_id: int) -> Suite:
        with self.db.cursor() as cur:
            suite = store.get_suite(cur, suite_id)
        if suite is None:
            raise NotFound(f"Suite {suite_id} was not found.")
        return suite

    def categories(self) -> list[str]:
        with self.db.cursor() as cur:
            return store.categories(cur)

    # --- runs ---

    def start_run(
        self,
        suite_id: int,
        models: Sequence[str],
        params: GenerationParams | None = None,
        presets: Sequence[GenerationParams] = (),
        judge: str | None = None,
    ) -> int:
        """Store a run of every prompt × model × preset and start it in the background.

        `presets` (or just `params`) each get the run's seed (params.seed, else DEFAULT_SEED).
        Raises InvalidInput or ModelNotFound before anything is stored."""
        suite = self.suite(suite_id)
        models = self.valid_models(models)
        if judge is not None:
            self.valid_models([judge])
        base = params or GenerationParams()
        seed = base.seed if base.seed is not None else DEFAULT_SEED
        chosen = list(presets) or [base]
        if len(chosen) > MAX_PRESETS:
            raise InvalidInput(f"A run takes at most {MAX_PRESETS} presets.")
        seeded = [p.model_copy(update={"seed": seed}).recorded() for p in chosen]
        with self.db.transaction() as cur:
            run_id = store.create_suite_run(cur, suite.id, models, seeded, judge)
        self._resume(run_id)
        return run_id

    def valid_models(self, models: Sequence[str]) -> list[str]:
        picked = list(dict.fromkeys(m for m in models if isinstance(m, str) and m.strip()))
        if not picked or len(picked) != len(list(models)):
            raise InvalidInput("Name each model once, at least one.")
        if len(picked) > MAX_MODELS:
            raise InvalidInput(f"A run takes at most {MAX_MODELS} models.")
        listed = [m.name for m in self.registry.list_models().models]
        named = []
        for entry in picked:
            collaboration = parse_collaboration(entry)
            inner = collaboration.models if collaboration else [entry]
            for model in inner:
                if not any(same_model(name, model) for name in listed):
                    raise ModelNotFound(model)
            named.append(collaboration.name if collaboration else entry)
        return named

    def run(self, suite_run_id: int) -> SuiteRunView:
        """The run's whole matrix: stored cells, the ones streaming now, the ones waiting."""
        with self.db.cursor() as cur:
            row = store.get_suite_run(cur, suite_run_id)
            if row is None:
                raise NotFound(f"Suite run {suite_run_id} was not found.")
            suite = store.get_suite(cur, row.suite_id)
            stored = {
                (c.prompt_index, c.model, c.preset_index): c
                for c in store.current_cells(cur, row.id)
            }
        assert suite is not None
        runner = self._runners.get(row.id)
        cells = [
            cell_view(key, stored.get(key), runner.live_text(key) if runner else None)
            for key in matrix(len(suite.prompts), row.models, len(row.presets))
        ]
        presets = [GenerationParams(**p) for p in row.presets]
        return SuiteRunView(
            row.id, suite, row.models, presets, row.judge, row.state, row.created_at, cells
        )

    def runs(self, suite_id: int | None = None) -> list[SuiteRunRow]:
        with self.db.cursor() as cur:
            return store.suite_runs(cur, suite_id)

    def stop(self, suite_run_id: int) -> None:
        """Stop a run: cells streaming now are stored as stopped, waiting ones are not sent."""
        runner = self._runners.get(suite_run_id)
        if runner is not None:
            runner.stop()
            runner.join(CLOSE_WAIT_SECONDS)
        else:
            self.finish(suite_run_id, STOPPED)

    def rerun(self, suite_run_id: int, cells: Sequence[CellKey] | None = None) -> None:
        """Send chosen cells again (each gets a new answer; the old one stays in History), or,
        without `cells`, the ones without a complete answer (a stopped run resumes)."""
        view = self.run(suite_run_id)
        if (runner := self._runners.get(suite_run_id)) is not None and runner.running:
            raise InvalidInput("This run is still running: stop it before running cells again.")
        keys = set(matrix(len(view.suite.prompts), view.models, len(view.presets)))
        chosen = [tuple(c) for c in cells] if cells is not None else None
        if chosen is not None and (not chosen or any(c not in keys for c in chosen)):
            raise InvalidInput("Pick cells of this run to run again.")
        with self.db.transaction() as cur:
            store.set_state(cur, suite_run_id, RUNNING)
        self._resume(suite_run_id, chosen)  # type: ignore[arg-type]

    def resume_interrupted(self) -> list[int]:
        """Resume every run the app stopped in the middle of (still 'running' when opened)."""
        with self.db.cursor() as cur:
            ids = store.runs_in_state(cur, RUNNING)
        for suite_run_id in ids:
            self._resume(suite_run_id)
        return ids

    def wait(self, suite_run_id: int, timeout: float | None = None) -> SuiteRunView:
        if (runner := self._runners.get(suite_run_id)) is not None:
            runner.join(timeout)
        return self.run(suite_run_id)

    def close(self) -> None:
        """Stop sending, leaving unfinished runs 'running' so the next start resumes them."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.stop(closing=True)
        for runner in runners:
            runner.join(CLOSE_WAIT_SECONDS)

    def _resume(self, suite_run_id: int, cells: list[CellKey] | None = None) -> None:
        with self.db.cursor() as cur:
            row = store.get_suite_run(cur, suite_run_id)
            suite = store.get_suite(cur, row.suite_id) if row else None
            stored = store.current_cells(cur, suite_run_id)
        assert row is not None and suite is not None
        if cells is None:
            complete = {
                (c.prompt_index, c.model, c.preset_index)
                for c in stored
                if c.run is not None and c.run.status == RunStatus.COMPLETE
            }
            cells = [
                k
                for k in matrix(len(suite.prompts), row.models, len(row.presets))
                if k not in complete
            ]
        with self._lock:
            self._runners[row.id] = SuiteRunner(self, row, suite.prompts, cells).start()

    # --- what the runner asks ---

    def hosts_by_model(self) -> dict[str, list[str]]:
        listing = self.registry.list_models()
        hosts: dict[str, list[str]] = {}
        for host, models in listing.by_host.items():
            for info in models:
                if info.available:
                    hosts.setdefault(info.name, []).append(host)
                    if info.name.endswith(":latest"):
                        hosts.setdefault(info.name.removesuffix(":latest"), []).append(host)
        return hosts

    def capacity(self, host: str) -> int:
        """How many replies a host serves at once: the embedded engine its slots."""
        return EMBEDDED_SLOTS if host == EMBEDDED_HOST else self.parallel_per_host

    def has_room(self, host: str) -> bool:
        return self.registry.in_flight(host) < self.capacity(host)

    def record_cell(
        self,
        suite_run_id: int,
        key: CellKey,
        conversation_id: str | None,
        run_id: int | None,
        error: str | None = None,
    ) -> None:
        with self.db.transaction() as cur:
            store.add_cell(
                cur,
                suite_run_id=suite_run_id,
                prompt_index=key[0],
                model=key[1],
                preset_index=key[2],
                conversation_id=conversation_id,
                run_id=run_id,
                error=error,
            )

    def record_step(self, collaboration: str) -> Callable[[str, int, str, int], None]:
        def record(group_id: str, step: int, role: str, run_id: int) -> None:
            with self.db.transaction() as cur:
                store.add_collaboration_step(cur, group_id, collaboration, step, role, run_id)

        return record

    def collaboration_steps(self, final_run_id: int) -> list[tuple[str, str, int]]:
        """(role, model, run id) of each step of the collaboration that gave this answer."""
        with self.db.cursor() as cur:
            return store.collaboration_steps(cur, final_run_id)

    def finish(self, suite_run_id: int, state: str) -> None:
        with self.db.transaction() as cur:
            store.set_state(cur, suite_run_id, state)

    # --- votes and the leaderboard ---

    def vote(self, a_run_id: int, b_run_id: int, outcome: str) -> int:
        """A human vote on two answers to the same prompt; raises InvalidInput, storing nothing."""
        if outcome not in OUTCOMES:
            raise InvalidInput(f"A vote's outcome is one of {', '.join(OUTCOMES)}.")
        if a_run_id == b_run_id:
            raise InvalidInput("A vote compares two different answers.")
        with self.db.transaction() as cur:
            a, b = store.run_facts(cur, a_run_id), store.run_facts(cur, b_run_id)
            check_pair(a, b, a_run_id, b_run_id)
            return store.record_pair_vote(cur, a_run_id, b_run_id, outcome)

    def next_pair(
        self, suite_run_id: int, rng: random.Random | None = None
    ) -> tuple[Cell, Cell] | None:
        """Two complete answers to the same prompt (and preset) by two models that nobody has
        voted on yet, in a random order; None when every pair has a vote."""
        view = self.run(suite_run_id)
        with self.db.cursor() as cur:
            voted = store.voted_pairs(cur)
        pairs = [
            (a, b)
            for a, b in answer_pairs(view.cells)
            if frozenset((a.run_id, b.run_id)) not in voted
        ]
        if not pairs:
            return None
        rng = rng or random.Random()
        a, b = rng.choice(pairs)
        return (a, b) if rng.random() < 0.5 else (b, a)

    def judge_run(
        self,
        suite_run_id: int,
        judge: str,
        rubric: str = DEFAULT_RUBRIC,
        stop: threading.Event | None = None,
    ) -> int:
        """Let `judge` decide every pair of complete answers it has not judged yet (each asked
        twice, the order swapped); returns how many pairs it judged. Stored apart from votes."""
        view = self.run(suite_run_id)
        with self.db.cursor() as cur:
            done = store.judged_pairs(cur, judge)
        judged = 0
        for a, b in answer_pairs(view.cells):
            if stop is not None and stop.is_set():
                break
            if (a.run_id, b.run_id) in done or (b.run_id, a.run_id) in done:
                continue
            self.judge_pair(view, a, b, judge, rubric)
            judged += 1
        return judged

    def judge_pair(
        self, view: SuiteRunView, a: Cell, b: Cell, judge: str, rubric: str
    ) -> str | None:
        suite_prompt = view.suite.prompts[a.prompt_index]
        verdicts = []
        for first, second in ((a, b), (b, a)):
            text = judge_prompt(
                rubric, suite_prompt.prompt, suite_prompt.reference, first.text, second.text
            )
            try:
                reply = self.chat.send(None, text, judge, JUDGE_PARAMS).consume()
                verdicts.append(
                    parse_verdict(reply.text) if reply.status == RunStatus.COMPLETE else None
                )
            except DashboardError:
                verdicts.append(None)
        outcome = agreed_outcome(verdicts[0], verdicts[1])
        with self.db.transaction() as cur:
            store.record_verdict(
                cur,
                a_run_id=a.run_id or 0,
                b_run_id=b.run_id or 0,
                judge_model=judge,
                rubric=rubric,
                first_verdict=verdicts[0],
                second_verdict=verdicts[1],
                outcome=outcome,
            )
        return outcome

    def start_judging(self, suite_run_id: int, judge: str, rubric: str = DEFAULT_RUBRIC) -> None:
        """Judge a run's pairs in the background (the page's button)."""
        self.valid_models([judge])
        self.run(suite_run_id)  # raises NotFound
        threading.Thread(
            target=self.judge_run, args=(suite_run_id, judge, rubric), daemon=True, name="judge"
        ).start()

    def judge_agreement(self) -> tuple[int, int]:
        """(agreements, pairs) over the pairs both a human and the judge decided ('both bad'
        counts as a tie)."""
        with self.db.cursor() as cur:
            pairs = store.judge_human_pairs(cur)
        same = sum(SCORES[human] == SCORES[judge] for human, judge in pairs)
        return same, len(pairs)

    def leaderboard(
        self,
        source: str = "both",
        category: str | None = None,
        suite_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        length_controlled: bool = False,
        rounds: int | None = None,
    ) -> Leaderboard:
        if source not in SOURCES:
            raise InvalidInput(f"The source is one of {', '.join(SOURCES)}.")
        with self.db.cursor() as cur:
            outcomes = store.pair_outcomes(
                cur,
                sources=SOURCES[source],
                category=category,
                suite_id=suite_id,
                since=since,
                until=until,
            )
            runs = sorted({o.a_run_id for o in outcomes} | {o.b_run_id for o in outcomes})
            speeds = {s.model: s for s in store.model_speeds(cur, runs)}
        games = [
            bt.Game(o.a_model, o.b_model, SCORES[o.outcome], o.a_length, o.b_length)
            for o in outcomes
            if o.a_model != o.b_model
        ]
        ratings = bt.bradley_terry(games, rounds=rounds, length_controlled=length_controlled)
        elo = bt.elo(games)
        rows = [
            BoardRow(
                r.model,
                r.rating,
                r.ci_low,
                r.ci_high,
                r.votes,
                r.rank_best,
                r.rank_worst,
                elo[r.model],
                speeds[r.model].median_tokens_per_second if r.model in speeds else None,
                speeds[r.model].median_seconds if r.model in speeds else None,
            )
            for r in ratings
        ]
        return Leaderboard(rows, len(games))


def valid_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Give the suite a name.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"A suite's name is at most {MAX_NAME_CHARS} characters.")
    return name.strip()


def check_pair(
    a: store.RunFacts | None, b: store.RunFacts | None, a_run_id: int, b_run_id: int
) -> None:
    for facts, run_id in ((a, a_run_id), (b, b_run_id)):
        if facts is None:
            raise InvalidInput(f"Run {run_id} does not exist.")
        if facts.status == RunStatus.STREAMING:
            raise InvalidInput(f"Run {run_id} is still streaming: vote once it has finished.")
    assert a is not None and b is not None
    if a.model == b.model:
        raise InvalidInput("A vote compares the answers of two different models.")
    if a.prompt != b.prompt:
        raise InvalidInput("A vote compares two answers to the same prompt.")


def answer_pairs(cells: Sequence[Cell]) -> list[tuple[Cell, Cell]]:
    """Every pair of complete answers to the same prompt that differ in one thing: two models
    with the same preset, or one model with two presets (each preset of a model is ranked as an
    entry of its own)."""
    complete = [c for c in cells if c.status == RunStatus.COMPLETE and c.run_id]
    return [
        (a, b)
        for a, b in itertools.combinations(complete, 2)
        if a.prompt_index == b.prompt_index
        and (a.model == b.model) != (a.preset_index == b.preset_index)
    ]


def matrix(prompts: int, models: Sequence[str], presets: int) -> list[CellKey]:
    """Every cell, prompt by prompt: the order a run sends them in."""
    return [(p, m, s) for p in range(prompts) for s in range(presets) for m in models]


def cell_view(key: CellKey, stored: StoredCell | None, live_text: str | None) -> Cell:
    prompt_index, model, preset_index = key
    if stored is None:
        return Cell(
            prompt_index, model, preset_index, None, None, "", "waiting", None, None, Metrics()
        )
    run = stored.run
    text = live_text if live_text is not None else stored.text
    return Cell(
        prompt_index,
        model,
        preset_index,
        run.id if run else None,
        stored.conversation_id,
        text,
        run.status if run else RunStatus.ERROR,
        stored.error,
        run.ttft_ms if run else None,
        run.metrics if run else Metrics(),
    )
