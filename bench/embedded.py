"""The app's embedded path against bare llama_cpp calls: same model, prompt and threads, one run.

- app: `ChatService.send` read to the end: validation, storing the user's turn, the queue for the
  model, fitting the context, rendering the prompt, stop sequences, checkpoints, the final store;
- bare generate: a loop over `Llama.generate` that detokenizes each token, the least per-token
  work llama_cpp allows (the target ratio is against this one);
- bare completion: `Llama.create_completion(stream=True)`, llama_cpp's own streaming call.

Each side has its own Llama of the same file, context size and n_threads (the app its own
process-wide one), starts every round from an empty KV cache and decodes greedily with the same
sampler settings to the same number of tokens, so all generate the same tokens.

This machine is shared, and llama.cpp's threads stall when another process takes a core: single
tokens then take up to 2 s instead of 40 ms. So the sides take turns token by token (one step of
each in turn), every step is timed along with the tokens its Llama evaluated in it, and a side's
rate is one over its median time per token after the first: a stall hits one token of one side,
not the comparison. The time to the first token (storing the turn, evaluating the prompt) is
reported apart, as bench/streaming.py does.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.support import median, report
from chatcore.backends.embedded import (
    DEFAULT_MODEL,
    MIN_P,
    REPEAT_PENALTY,
    TOP_K,
    EmbeddedBackend,
    default_model_file,
    engine_installed,
)
from chatcore.backends.registry import Registry
from chatcore.chat import ChatService
from chatcore.params import GenerationParams
from chatcore.storage.db import Database
from chatcore.types import ChatMessage

if TYPE_CHECKING:
    from llama_cpp import Llama

TOKENS = 48
ROUNDS = 5
PROMPT = "Count from one to a hundred: one, two, three,"  # a reply that goes on and on
PARAMS = GenerationParams(temperature=0, top_p=0.9, max_tokens=TOKENS)

Steps = Iterator[object]


@dataclass
class Side:
    """One side's reply, advanced a step at a time, with the time each of its tokens took."""

    llm: Llama
    steps: Steps
    first_ms: float = 0.0  # the first step: whatever precedes the first token, and the token
    token_seconds: list[float] = field(default_factory=list)
    tokens: int = 0
    done: bool = False

    def step(self) -> None:
        evaluated, started = self.llm.n_tokens, time.perf_counter()
        try:
            next(self.steps)
        except StopIteration:
            self.done = True
        seconds = time.perf_counter() - started
        if not self.first_ms:
            self.first_ms = seconds * 1000
            return
        if (tokens := self.llm.n_tokens - evaluated) > 0:  # 0 on the closing step
            self.token_seconds += [seconds / tokens] * tokens
            self.tokens += tokens

    @property
    def tokens_per_second(self) -> float:
        return 1 / median(self.token_seconds)


def app_steps(chat: ChatService) -> Steps:
    yield from chat.send(None, PROMPT, DEFAULT_MODEL, PARAMS)


def generate_steps(llm: Llama, vocab: object, prompt: list[int]) -> Steps:
    import llama_cpp

    tokens = llm.generate(
        prompt, top_k=TOP_K, top_p=PARAMS.top_p, min_p=MIN_P, temp=0, repeat_penalty=REPEAT_PENALTY
    )
    for count, token in enumerate(tokens, start=1):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            return
        yield llm.detokenize([token])
        if count >= TOKENS:
            return


def completion_steps(llm: Llama, prompt: str) -> Steps:
    for chunk in llm.create_completion(
        prompt,
        max_tokens=TOKENS,
        temperature=0,
        top_p=PARAMS.top_p,
        top_k=TOP_K,
        min_p=MIN_P,
        repeat_penalty=REPEAT_PENALTY,
        stream=True,
    ):
        yield chunk["choices"][0]["text"]


def token_by_token(sides: dict[str, Side]) -> dict[str, Side]:
    while not all(side.done for side in sides.values()):
        for side in sides.values():
            if not side.done:
                side.step()
    return sides


def twin_of(llm: Llama) -> Llama:
    """Another Llama of the same file, context size and threads, for a side of its own."""
    import llama_cpp

    return llama_cpp.Llama(
        model_path=llm.model_path,
        n_ctx=llm.n_ctx(),
        n_threads=llm.n_threads,
        n_threads_batch=llm.n_threads_batch,
        verbose=False,
    )


def run() -> tuple[list[dict[str, Side]], int]:
    import llama_cpp

    with tempfile.TemporaryDirectory() as tmp:
        backend = EmbeddedBackend()
        db = Database(Path(tmp) / "bench.duckdb")
        chat = ChatService(db, Registry([backend]))
        chat.send(None, PROMPT, DEFAULT_MODEL, PARAMS).consume()  # loads the app's model
        loaded = backend.slot(DEFAULT_MODEL).loaded
        assert loaded is not None
        app, bare, completion = loaded.llm, twin_of(loaded.llm), twin_of(loaded.llm)
        messages = [ChatMessage(role="user", content=PROMPT)]
        prompt = loaded.tokens(messages)
        # create_completion adds the BOS token itself; the transcript has no special tokens
        text = loaded.prompt_format.render(messages)
        vocab = llama_cpp.llama_model_get_vocab(bare.model)
        rounds = []
        for _ in range(ROUNDS + 1):  # the first round warms every side up
            for llm in (app, bare, completion):
                llm.reset()  # every side evaluates the whole prompt
            sides = {
                "app": Side(app, app_steps(chat)),
                "generate": Side(bare, generate_steps(bare, vocab, prompt)),
                "completion": Side(completion, completion_steps(completion, text)),
            }
            rounds.append(token_by_token(sides))
        db.close()
    return rounds[1:], len(prompt)


def summary(rounds: list[dict[str, Side]], name: str, of: Callable[[Side], float]) -> float:
    return median([of(sides[name]) for sides in rounds])


def ratio(rounds: list[dict[str, Side]], name: str, other: str) -> float:
    """The median over rounds of the two sides' rates within a round."""
    return median([r[name].tokens_per_second / r[other].tokens_per_second for r in rounds])


def main() -> None:
    if not (engine_installed() and default_model_file()):
        print("\n== embedded: skipped, llama-cpp-python or its default model is not installed")
        return
    rounds, prompt_tokens = run()
    counts = sorted({sides[name].tokens + 1 for sides in rounds for name in ("app", "generate")})

    def rate(name: str) -> str:
        return f"{summary(rounds, name, lambda side: side.tokens_per_second):.1f}"

    def first(name: str) -> str:
        return f"{summary(rounds, name, lambda side: side.first_ms):.0f} ms"

    report(
        f"embedded: app path vs bare llama_cpp, {DEFAULT_MODEL}, {prompt_tokens}-token prompt, "
        f"{TOKENS} tokens, {os.cpu_count()} threads, {ROUNDS} rounds token by token",
        [
            ("tokens per reply (app, bare generate)", ", ".join(map(str, counts))),
            ("bare generate tokens/s", rate("generate")),
            ("bare create_completion tokens/s", rate("completion")),
            ("app path tokens/s", rate("app")),
            ("ratio app/bare generate (target >= 0.95)", f"{ratio(rounds, 'app', 'generate'):.3f}"),
            ("ratio app/bare create_completion", f"{ratio(rounds, 'app', 'completion'):.3f}"),
            ("bare generate time to first token", first("generate")),
            ("app time to first token (with storing the turn)", first("app")),
        ],
    )


if __name__ == "__main__":
    main()
