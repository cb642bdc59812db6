"""The app's embedded path against the bare engine: the same in-process llama.cpp server, one run.

- app: `ChatService.send` read to the end: validation, storing the user's turn, the queue for the
  model's slots, fitting the context (the prompt measured by the server), stop sequences, the
  OpenAI-compatible stream, checkpoints, the final store;
- bare: the same chat-completions request posted straight to the same server over loopback HTTP
  and its stream read, the least an OpenAI-compatible client can do (the target ratio is
  against this one).

Both decode greedily with the same sampler settings to the same number of tokens, evaluating the
whole prompt afresh (no prompt cache), in rounds whose order flips each time. The machine is
shared and llama.cpp's threads stall when another process takes a core, so a side's rate is one
over its median time between pieces after the first (a stall hits one token, not the median),
and the ratio is the median over rounds of the two rates within a round.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.support import median, report
from chatcore.backends.embedded import (
    DEFAULT_MODEL,
    EmbeddedBackend,
    LoadedModel,
    default_model_file,
    engine_installed,
    request_body,
)
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.params import GenerationParams
from chatcore.storage.db import Database
from chatcore.types import ChatMessage

TOKENS = 48
ROUNDS = 5
PROMPT = "Count from one to a hundred: one, two, three,"  # a reply that goes on and on
PARAMS = GenerationParams(temperature=0, top_p=0.9, max_tokens=TOKENS)


@dataclass
class Side:
    """One reply: when each piece of text arrived, from the call."""

    started: float = field(default_factory=time.perf_counter)
    arrivals: list[float] = field(default_factory=list)

    def piece(self) -> None:
        self.arrivals.append(time.perf_counter())

    @property
    def first_ms(self) -> float:
        return (self.arrivals[0] - self.started) * 1000

    @property
    def tokens_per_second(self) -> float:
        gaps = [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]
        return 1 / median(gaps)


def app_reply(chat: ChatService) -> Side:
    side = Side()
    for piece in chat.send(None, PROMPT, DEFAULT_MODEL, PARAMS):
        if piece:
            side.piece()
    return side


def bare_reply(loaded: LoadedModel) -> Side:
    """The request the app sends, posted as is; every content delta is a piece."""
    messages = [ChatMessage(role="user", content=PROMPT)]
    body = request_body(messages, PARAMS, TOKENS, loaded.stop)
    headers = {"Authorization": f"Bearer {loaded.server.api_key}"}
    side = Side()
    url = f"{loaded.server.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    side.piece()
    return side


def run() -> list[dict[str, Side]]:
    with tempfile.TemporaryDirectory() as tmp:
        backend = EmbeddedBackend()
        db = Database(Path(tmp) / "bench.duckdb")
        chat = ChatService(db, Registry([backend]))
        chat.send(None, PROMPT, DEFAULT_MODEL, PARAMS).consume()  # loads the app's model
        loaded = backend.slot(DEFAULT_MODEL).loaded
        assert loaded is not None
        sides: dict[str, Callable[[], Side]] = {
            "app": lambda: app_reply(chat),
            "bare": lambda: bare_reply(loaded),
        }
        rounds = []
        for number in range(ROUNDS + 1):  # the first round warms both sides up
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            rounds.append({name: sides[name]() for name in order})
        db.close()
    return rounds[1:]


def summary(rounds: list[dict[str, Side]], name: str, of: Callable[[Side], float]) -> float:
    return median([of(sides[name]) for sides in rounds])


def ratio(rounds: list[dict[str, Side]], name: str, other: str) -> float:
    """The median over rounds of the two sides' rates within a round."""
    return median([r[name].tokens_per_second / r[other].tokens_per_second for r in rounds])


def main() -> None:
    if not (engine_installed() and default_model_file()):
        print("\n== embedded: skipped, xllamacpp or its default model is not installed")
        return
    rounds = run()
    counts = sorted({len(sides[name].arrivals) for sides in rounds for name in ("app", "bare")})

    def rate(name: str) -> str:
        return f"{summary(rounds, name, lambda side: side.tokens_per_second):.1f}"

    def first(name: str) -> str:
        return f"{summary(rounds, name, lambda side: side.first_ms):.0f} ms"

    report(
        f"embedded: app path vs the bare in-process llama.cpp server, {DEFAULT_MODEL}, "
        f"{TOKENS} tokens, {os.cpu_count()} threads, {ROUNDS} alternating rounds",
        [
            ("pieces per reply (app, bare)", ", ".join(map(str, counts))),
            ("bare server stream tokens/s", rate("bare")),
            ("app path tokens/s", rate("app")),
            ("ratio app/bare (target >= 0.95)", f"{ratio(rounds, 'app', 'bare'):.3f}"),
            ("bare time to first token", first("bare")),
            ("app time to first token (with storing the turn)", first("app")),
        ],
    )


if __name__ == "__main__":
    main()
