"""Models that work together, as one entry of a suite that can be ranked against single models.

Two patterns, each named like a model so a suite run takes it where it takes a model:
- `critique(A -> B -> C)`: A drafts, B critiques the draft, C revises it (`critique(A -> B)`:
  A revises its own draft);
- `fusion(A + B -> S)`: A and B (any number, two or more) answer at once, then S writes one final
  answer from theirs.
Every step is sent through `ChatService.send` (an ordinary, streamed run that History and Stats
see) and recorded with its role; the last step's run is the entry's answer.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from chatcore.chat import ChatService, Reply
from chatcore.errors import DashboardError, InvalidInput
from chatcore.params import GenerationParams
from chatcore.types import RunStatus

CRITIQUE, FUSION = "critique", "fusion"
SPEC = re.compile(r"^\s*(critique|fusion)\s*\((.+)\)\s*$")
# Roles of the steps, as stored.
DRAFT, CRITIC, REVISE, ANSWER, SYNTHESIS = "draft", "critique", "revise", "answer", "synthesis"


@dataclass(frozen=True)
class Collaboration:
    pattern: str  # CRITIQUE or FUSION
    first: tuple[str, ...]  # critique: (drafter, critic); fusion: the models answering at once
    last: str  # who writes the final answer: the reviser or the synthesiser

    @property
    def name(self) -> str:
        if self.pattern == CRITIQUE:
            return f"critique({' -> '.join((*self.first, self.last))})"
        return f"fusion({' + '.join(self.first)} -> {self.last})"

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys((*self.first, self.last)))


def parse_collaboration(name: str) -> Collaboration | None:
    """The collaboration a name spells, None for a plain model; InvalidInput when malformed."""
    match = SPEC.match(name)
    if match is None:
        return None
    pattern, body = match.group(1), match.group(2)
    parts = [part.strip() for part in body.split("->")]
    if pattern == CRITIQUE:
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidInput("Write a critique as critique(drafter -> critic -> reviser).")
        drafter, critic, *rest = parts
        return Collaboration(CRITIQUE, (drafter, critic), rest[0] if rest else drafter)
    answerers = [m.strip() for m in parts[0].split("+")] if len(parts) == 2 else []
    if len(answerers) < 2 or not all(answerers) or not parts[1]:
        raise InvalidInput("Write a fusion as fusion(model + model -> synthesiser).")
    return Collaboration(FUSION, tuple(answerers), parts[1])


# --- the prompts each step gets ---


def critique_prompt(question: str, draft: str) -> str:
    return (
        "Here is a question and a draft answer. Point out its errors, omissions and unclear "
        "parts, briefly. Do not rewrite the answer.\n\n"
        f"Question:\n{question}\n\nDraft answer:\n{draft}"
    )


def revise_prompt(question: str, draft: str, critique: str) -> str:
    return (
        "Improve the draft answer to the question using the critique. Reply with the final "
        f"answer only.\n\nQuestion:\n{question}\n\nDraft answer:\n{draft}\n\n"
        f"Critique:\n{critique}"
    )


def synthesis_prompt(question: str, answers: list[str]) -> str:
    numbered = "\n\n".join(f"Answer {i}:\n{text}" for i, text in enumerate(answers, start=1))
    return (
        "Several assistants answered the question below. Write the single best answer, keeping "
        "what each got right and fixing their mistakes. Reply with the final answer only.\n\n"
        f"Question:\n{question}\n\n{numbered}"
    )


# --- running one ---

RecordStep = Callable[[str, int, str, int], None]  # (group id, step, role, run id)
WaitForRoom = Callable[[str], bool]  # blocks until the model's host has room; False: stopped
OnChange = Callable[[], None]  # a step began, or a piece of it arrived


class StepFailed(DashboardError):
    """A step before the last one ended without an answer."""


class CollaborationRun:
    """Runs the steps on the calling thread (fusion's answers on threads of their own)."""

    def __init__(
        self,
        chat: ChatService,
        collaboration: Collaboration,
        question: str,
        params: GenerationParams,
        record_step: RecordStep,
        wait_for_room: WaitForRoom,
        stop: threading.Event,
        on_change: OnChange | None = None,
    ) -> None:
        self.collaboration = collaboration
        self.parts: list[str] = []  # the step streaming now
        self.step_now: tuple[str, str] | None = None  # (role, model or models) of that step
        self.failed_run_id: int | None = None  # a step's run that ended without an answer
        self._on_change = on_change or (lambda: None)
        self._chat = chat
        self._question = question
        self._params = params
        self._record = record_step
        self._wait = wait_for_room
        self._stop = stop
        self._group = uuid.uuid4().hex
        self._lock = threading.Lock()

    def first_steps(self) -> list[str]:
        """The answers the last step builds on; raises StepFailed."""
        c = self.collaboration
        if c.pattern == CRITIQUE:
            draft = self.step(0, DRAFT, c.first[0], self._question)
            critique = self.step(1, CRITIC, c.first[1], critique_prompt(self._question, draft))
            return [draft, critique]
        answers: list[str | None] = [None] * len(c.first)
        self.started(ANSWER, " + ".join(c.first))
        failures: list[str] = []

        def answer(index: int, model: str) -> None:
            try:
                answers[index] = self.step(0, ANSWER, model, self._question, show=False)
            except StepFailed as failed:
                failures.append(str(failed))

        threads = [
            threading.Thread(target=answer, args=(i, m), daemon=True) for i, m in enumerate(c.first)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise StepFailed(failures[0])
        return [a or "" for a in answers]

    def last_prompt(self, earlier: list[str]) -> tuple[str, str]:
        """(role, prompt) of the last step."""
        if self.collaboration.pattern == CRITIQUE:
            return REVISE, revise_prompt(self._question, earlier[0], earlier[1])
        return SYNTHESIS, synthesis_prompt(self._question, earlier)

    def start_last(self, role: str, prompt: str) -> object:
        """Send the last step; the caller streams it (it is the entry's answer)."""
        if not self._wait(self.collaboration.last):
            raise StepFailed("Stopped.")
        self.started(role, self.collaboration.last)
        stream = self._chat.send(None, prompt, self.collaboration.last, self._params)
        self._record(
            self._group,
            2 if self.collaboration.pattern == CRITIQUE else 1,
            role,
            stream.reply.run_id,
        )
        return stream

    def started(self, role: str, model: str) -> None:
        self.step_now = (role, model)
        self._on_change()

    def step(self, number: int, role: str, model: str, prompt: str, show: bool = True) -> str:
        if not self._wait(model):
            raise StepFailed("Stopped.")
        try:
            stream = self._chat.send(None, prompt, model, self._params)
        except DashboardError as error:
            raise StepFailed(f"The {role} step ({model}) failed: {error}") from error
        self._record(self._group, number, role, stream.reply.run_id)
        if show:
            self.parts.clear()
            self.started(role, model)
        try:
            for piece in stream:
                if show:
                    self.parts.append(piece)
                    self._on_change()
                if self._stop.is_set():
                    break
        finally:
            stream.close()
        reply: Reply = stream.reply
        if reply.status != RunStatus.COMPLETE:
            self.failed_run_id = reply.run_id
            raise StepFailed(f"The {role} step ({model}) ended {reply.status}: {reply.error or ''}")
        return reply.text
