"""Compare: one prompt fanned out to several models at once, votes on their answers, ratings.

Every column sends through `ChatService.send`, so each compared answer is an ordinary
conversation (it shows in History and Stats, and can be continued in Chat). The columns stream
on worker threads that never touch Streamlit; the caller reads `LiveRound.updates()` on its own
thread and redraws the columns that changed.
"""

from __future__ import annotations

import itertools
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatcore.chat import ChatService, Reply, valid_message
from chatcore.collaboration import CollaborationRun, parse_collaboration
from chatcore.errors import DashboardError, InvalidInput
from chatcore.params import GenerationParams
from chatcore.storage import suites as steps_store
from chatcore.storage import votes as store
from chatcore.storage.db import Database
from chatcore.storage.votes import StoredEntry as StoredEntry  # the page draws these
from chatcore.storage.votes import StoredRound as StoredRound
from chatcore.types import RunStatus, Thinking, canonical_model

log = logging.getLogger(__name__)

MIN_MODELS = 2
MAX_MODELS = 4
LABELS = "ABCD"
HEARTBEAT_SECONDS = 0.25  # updates() yields at least this often, so a caller can notice a stop
STOP_WAIT_SECONDS = 5.0

# A vote: the best column (for two columns, "A better" / "B better"), a tie, or all bad.
BEST, TIE, ALL_BAD = "best", "tie", "all_bad"
OUTCOMES = (BEST, TIE, ALL_BAD)

ELO_START = 1000.0
ELO_K = 32.0


@dataclass
class Column:
    """One column of a live round: its letter, its model, and the reply as it arrives."""

    label: str
    model: str
    parts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)  # its reasoning, apart from the answer
    reply: Reply | None = None  # set once ChatService.send has stored the user's turn
    error: str | None = None  # the model was refused before anything was stored
    done: bool = False
    collaboration: CollaborationRun | None = None  # set when models work together in it

    @property
    def step(self) -> tuple[str, str] | None:
        """A collaboration's step streaming now: (role, model), None once its answer streams."""
        if self.collaboration is None or self.reply is not None:
            return None
        return self.collaboration.step_now

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def thinking(self) -> str:
        return "".join(self.thoughts)

    @property
    def status(self) -> str:
        if self.reply is not None:
            return self.reply.status
        return RunStatus.ERROR if self.error else "waiting"

    @property
    def error_message(self) -> str | None:
        return self.error or (self.reply.error if self.reply else None)


class LiveRound:
    """A round whose columns stream at the same time, each on its own thread."""

    def __init__(
        self,
        round_id: int,
        prompt: str,
        blind: bool,
        models: Sequence[str],
        chat: ChatService,
        params: GenerationParams,
    ) -> None:
        self.id = round_id
        self.prompt = prompt
        self.blind = blind
        self.columns = [Column(label, model) for label, model in zip(LABELS, models, strict=False)]
        self.started = time.monotonic()
        self._chat = chat
        self._params = params
        self._changes: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run_column, args=(i,), daemon=True, name=f"compare-{c}")
            for i, c in enumerate(LABELS[: len(self.columns)])
        ]

    @property
    def finished(self) -> bool:
        """True once every column is done and stored (complete, stopped or failed)."""
        return all(column.done for column in self.columns)

    def start(self) -> LiveRound:
        for thread in self._threads:
            thread.start()
        return self

    def updates(self, heartbeat: float = HEARTBEAT_SECONDS) -> Iterator[set[int]]:
        """Yield the indexes of the columns that changed since the last yield (an empty set when
        nothing arrived for `heartbeat` seconds), until every column is done."""
        finished: set[int] = set()
        while len(finished) < len(self.columns):
            try:
                changed = {self._changes.get(timeout=heartbeat)}
            except queue.Empty:
                yield set()
                continue
            while True:  # take everything that arrived meanwhile: one redraw per column
                try:
                    changed.add(self._changes.get_nowait())
                except queue.Empty:
                    break
            finished.update(i for i in changed if self.columns[i].done)
            yield changed

    def wait(self) -> list[Column]:
        for _ in self.updates():
            pass
        return self.columns

    def stop(self) -> None:
        """Stop every column still streaming; each is stored as 'stopped' with its text so far."""
        self._stop.set()
        # A column notices the stop at its next token; don't hang on one that sends none.
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run_column(self, index: int) -> None:
        column = self.columns[index]
        try:
            if not self._stop.is_set():
                self._stream_column(index, column)
        except Exception:  # a column's failure stays in its column
            log.exception("compare column failed")  # the detail for the log, plain words shown
            column.error = column.error or "Something went wrong in this column; see the log."
        finally:
            column.done = True
            self._changes.put(index)

    def _stream_column(self, index: int, column: Column) -> None:
        try:
            if parse_collaboration(column.model) is not None:
                stream = self._collaborate(index, column)
            else:
                stream = self._chat.send(None, self.prompt, column.model, self._params)
        except (InvalidInput, DashboardError) as error:
            column.error = str(error)
            return
        column.reply = stream.reply
        try:
            self._add_entry(index, column, stream.reply.run_id, stream.reply.conversation_id)
            for piece in stream:
                (column.thoughts if piece.__class__ is Thinking else column.parts).append(piece)
                self._changes.put(index)
                if self._stop.is_set():
                    break
        finally:
            stream.close()  # a break stores the reply as stopped

    def _add_entry(
        self, index: int, column: Column, run_id: int, conversation_id: str | None = None
    ) -> None:
        with self._chat.db.transaction() as cur:
            store.add_entry(
                cur,
                round_id=self.id,
                label=column.label,
                position=index,
                conversation_id=conversation_id,
                run_id=run_id,
            )

    def _collaborate(self, index: int, column: Column) -> Any:
        """A collaboration's steps before its answer, streamed into the column one after the
        other; returns the last step's stream (the column's answer). A failed step is stored as
        the column's entry, so the round keeps the column and says why."""
        collaboration = parse_collaboration(column.model)
        assert collaboration is not None

        def record(group_id: str, step: int, role: str, run_id: int) -> None:
            with self._chat.db.transaction() as cur:
                steps_store.add_collaboration_step(
                    cur, group_id, collaboration.name, step, role, run_id
                )

        steps = CollaborationRun(
            self._chat,
            collaboration,
            self.prompt,
            self._params,
            record,
            lambda model: not self._stop.is_set(),
            self._stop,
            on_change=lambda: self._changes.put(index),
        )
        column.collaboration, column.parts = steps, steps.parts
        try:
            stream = steps.start_last(*steps.last_prompt(steps.first_steps()))
        except DashboardError:
            if steps.failed_run_id is not None:
                self._add_entry(index, column, steps.failed_run_id)
            raise
        column.parts = []  # the answer streams into a list of its own
        return stream


@dataclass(frozen=True)
class Standing:
    model: str
    rating: float
    wins: int
    votes: int

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0


class CompareService:
    def __init__(self, db: Database, chat: ChatService) -> None:
        self.db = db
        self.chat = chat

    def start(
        self,
        prompt: str,
        models: Sequence[str],
        params: GenerationParams,
        blind: bool,
        rng: random.Random | None = None,
    ) -> LiveRound:
        """Store the round and start every column. Raises InvalidInput before anything is written.

        Blind rounds shuffle the models over the columns A, B, ...
        """
        prompt = valid_message(prompt)
        models = valid_models(models)
        if blind:
            (rng or random.Random()).shuffle(models)
        with self.db.transaction() as cur:
            round_id = store.create_round(cur, prompt, blind, params.recorded())
        return LiveRound(round_id, prompt, blind, models, self.chat, params).start()

    def round(self, round_id: int) -> store.StoredRound | None:
        with self.db.cursor() as cur:
            return store.get_round(cur, round_id)

    def vote(self, round_id: int, outcome: str, winner_label: str | None = None) -> None:
        """Store a vote on a finished round: the best column, a tie, or all bad."""
        with self.db.transaction() as cur:
            stored = store.get_round(cur, round_id)
            check_vote(stored, outcome, winner_label)
            store.record_vote(cur, round_id, outcome, winner_label if outcome == BEST else None)

    def standings(self, blind_only: bool = False) -> list[Standing]:
        with self.db.cursor() as cur:
            return standings(store.all_votes(cur, blind_only))


@dataclass(frozen=True)
class VoteChoice:
    outcome: str
    winner_label: str | None
    text: str


def vote_choices(labels: Sequence[str]) -> list[VoteChoice]:
    """What a user can say about a round: with two answers "A is better", "B is better", "Tie",
    "Both are bad"; with three or four, which one is best, "Tie" or "All are bad"."""
    two = len(labels) == 2
    word = "better" if two else "best"
    best = [VoteChoice(BEST, label, f"{label} is {word}") for label in labels]
    return [
        *best,
        VoteChoice(TIE, None, "Tie"),
        VoteChoice(ALL_BAD, None, "Both are bad" if two else "All are bad"),
    ]


def describe_vote(vote: store.StoredVote, labels: Sequence[str]) -> str:
    texts = {(c.outcome, c.winner_label): c.text for c in vote_choices(labels)}
    return texts.get((vote.outcome, vote.winner_label), vote.outcome.replace("_", " "))


def model_stem(model: str) -> str:
    """The name a model calls itself by: `llama3.2:latest` -> `llama`, `qwen3:4b` -> `qwen`."""
    match = re.match(r"[A-Za-z]+", model.rsplit("/", 1)[-1])
    return match.group(0).lower() if match else ""


def names_a_model(text: str, models: Sequence[str]) -> str | None:
    """The first of the round's model names an answer mentions: a blind vote on it is not blind
    (answers often say who made them)."""
    lowered = text.lower()
    for stem in map(model_stem, models):
        if len(stem) >= 3 and re.search(rf"\b{re.escape(stem)}", lowered):
            return stem
    return None


def valid_models(models: Sequence[str]) -> list[str]:
    by_name: dict[str, str] = {}
    for model in models:  # the same model twice (phi3, phi3:latest) is one column
        collaboration = parse_collaboration(model)  # models working together: one column
        name = collaboration.name if collaboration else model
        by_name.setdefault(canonical_model(name), name)
    picked = list(by_name.values())
    if not MIN_MODELS <= len(picked) <= MAX_MODELS:
        raise InvalidInput(f"Pick {MIN_MODELS} to {MAX_MODELS} different models to compare.")
    return picked


def check_vote(stored: store.StoredRound | None, outcome: str, winner_label: str | None) -> None:
    if stored is None:
        raise InvalidInput("That compare round does not exist.")
    if stored.vote is not None:
        raise InvalidInput("This round already has a vote.")
    if any(entry.run.status == RunStatus.STREAMING for entry in stored.entries):
        raise InvalidInput("Wait until every answer has finished before voting.")
    if len(votable(stored)) < MIN_MODELS:
        raise InvalidInput("A vote needs at least two answers that did not fail.")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"A vote is one of {', '.join(OUTCOMES)}.")
    if outcome == BEST and winner_label not in {entry.label for entry in votable(stored)}:
        raise InvalidInput("Say which answer was best (a failed answer can't be).")


def votable(stored: store.StoredRound) -> list[store.StoredEntry]:
    """The answers a vote judges: a failed one takes no part (it can't win, nor tie)."""
    return [entry for entry in stored.entries if entry.run.status != RunStatus.ERROR]


# --- ratings ---


def pairwise_scores(vote: store.VoteRecord) -> list[tuple[str, str, float]]:
    """A vote as games between pairs of models: (a, b, a's score). The best column beats each
    other column; a tie and 'all bad' count as draws between every pair (as Chatbot Arena does)."""
    if vote.outcome == BEST and vote.winner_model is not None:
        return [(vote.winner_model, m, 1.0) for m in vote.models if m != vote.winner_model]
    return [(a, b, 0.5) for a, b in itertools.combinations(vote.models, 2)]


def expected_score(rating: float, other: float) -> float:
    return 1.0 / (1.0 + 10 ** ((other - rating) / 400.0))


def elo_ratings(votes: Sequence[store.VoteRecord], k: float = ELO_K) -> dict[str, float]:
    """Elo over the votes in the order they were cast, from 1000. A vote with n columns counts as
    n-1 games per column, each with k/(n-1), so any vote moves a rating as much as a 2-way one.
    The games of one vote are scored from the ratings before it, so their order does not matter."""
    ratings: dict[str, float] = {}
    for vote in votes:
        step = k / (len(vote.models) - 1)
        before = {m: ratings.get(m, ELO_START) for m in vote.models}
        for a, b, score in pairwise_scores(vote):
            change = step * (score - expected_score(before[a], before[b]))
            ratings[a] = ratings.get(a, ELO_START) + change
            ratings[b] = ratings.get(b, ELO_START) - change
    return ratings


def standings(votes: Sequence[store.VoteRecord]) -> list[Standing]:
    """Per model: its Elo rating, the votes it took part in and those that judged it best."""
    votes = [vote for vote in votes if len(vote.models) >= MIN_MODELS]  # failed answers left out
    ratings = elo_ratings(votes)
    counts: dict[str, int] = {}
    wins: dict[str, int] = {}
    for vote in votes:
        for model in vote.models:
            counts[model] = counts.get(model, 0) + 1
        if vote.outcome == BEST and vote.winner_model is not None:
            wins[vote.winner_model] = wins.get(vote.winner_model, 0) + 1
    table = [Standing(m, ratings[m], wins.get(m, 0), counts[m]) for m in counts]
    return sorted(table, key=lambda s: (-s.rating, s.model))
