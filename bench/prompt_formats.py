"""Which prompt format suits a model without a chat template: `python -m bench.prompt_formats`.

Runs a dozen everyday prompts through the embedded engine's server (its /v1/completions, with the
prompt rendered in each format and the app's sampler settings), greedily, and counts the replies
that end on their own (rather than at max tokens), that echo the question, and that repeat a
sentence. Gemma 3 270M (the default) by default; pass a GGUF file to measure another model. Not
part of `make bench`: it measures replies, not speed.
"""

from __future__ import annotations

import collections
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.support import report
from chatcore.backends.embedded import (
    DEFAULT_MODEL,
    MIN_P,
    REPEAT_PENALTY,
    TOP_K,
    EmbeddedBackend,
    LoadedModel,
    ReplyText,
)
from chatcore.backends.prompt_formats import PromptFormat, Transcript
from chatcore.params import GenerationParams
from chatcore.types import ChatMessage

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I boil an egg?",
    "Hello! Who are you?",
    "Give me three tips to sleep better.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "Tell me a joke.",
    "Why is the sky blue?",
    "Name a famous painter.",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "What should I cook tonight?",
]
PARAMS = GenerationParams(temperature=0, max_tokens=80)


class BareTranscript(Transcript):
    """The transcript without its one-line preamble."""

    name = "transcript, no preamble"

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return super().render(messages).split("\n\n", 1)[1]


class GemmaTurns:
    """Gemma's chat-turn markers, as its instruction-tuned models are prompted."""

    name = "gemma turn markers"
    stop = ("<end_of_turn>",)
    special_tokens = True

    def render(self, messages: Sequence[ChatMessage]) -> str:
        turns = [
            f"<start_of_turn>{'model' if m['role'] == 'assistant' else 'user'}\n"
            f"{m['content']}<end_of_turn>\n"
            for m in messages
        ]
        return "".join(turns) + "<start_of_turn>model\n"


class OwnTemplate:
    """The chat template the GGUF file carries, as the server applies it."""

    name = "the file's chat template"
    stop = ()
    special_tokens = True

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return self.loaded.server.rendered(messages)


def complete(loaded: LoadedModel, prompt: str, stop: Sequence[str]) -> dict[str, Any]:
    """One greedy completion of the rendered prompt on the model's server."""
    body = {
        "prompt": prompt,
        "max_tokens": PARAMS.max_tokens,
        "temperature": 0,
        "top_k": TOP_K,
        "top_p": PARAMS.top_p,
        "min_p": MIN_P,
        "repeat_penalty": REPEAT_PENALTY,
        "stop": list(stop),
        "cache_prompt": False,
    }
    headers = {"Authorization": f"Bearer {loaded.server.api_key}"}
    url = f"{loaded.server.url}/v1/completions"
    answer = httpx.post(url, json=body, headers=headers, timeout=300)
    answer.raise_for_status()
    return answer.json()


def repeats_itself(text: str) -> bool:
    sentences = [s.strip() for s in re.split(r"[.!?\n]+", text) if s.strip()]
    return bool(sentences) and collections.Counter(sentences).most_common(1)[0][1] >= 3


def measure(loaded: LoadedModel, prompt_format: PromptFormat) -> list[tuple[str, str]]:
    ended = echoed = repeated = tokens = 0
    for prompt in PROMPTS:
        rendered = prompt_format.render([ChatMessage(role="user", content=prompt)])
        answer = complete(loaded, rendered, prompt_format.stop)
        text = ReplyText(()).flush(answer["choices"][0]["text"])
        ended += answer["choices"][0].get("finish_reason") == "stop"
        echoed += prompt.lower() in text.lower()
        repeated += repeats_itself(text)
        tokens += answer.get("usage", {}).get("completion_tokens") or 0
    n = len(PROMPTS)
    return [
        (f"{prompt_format.name}: ended on its own", f"{ended}/{n}"),
        (f"{prompt_format.name}: echoed the question", f"{echoed}/{n}"),
        (f"{prompt_format.name}: repeated a sentence 3+ times", f"{repeated}/{n}"),
        (f"{prompt_format.name}: mean reply tokens", f"{tokens / n:.0f}"),
    ]


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else None
    backend = EmbeddedBackend([path] if path else [], include_default=path is None)
    [model] = backend.model_files()
    slot = backend.slot(model.name)
    with slot.turns.turn(0, 1):
        loaded, _ = slot.load(model, backend.n_ctx)
    formats: list[PromptFormat] = [Transcript(), BareTranscript(), GemmaTurns()]
    if loaded.prompt_format != Transcript.name:  # the file's own chat template
        formats.insert(0, OwnTemplate(loaded))
    started = time.perf_counter()
    rows = [row for prompt_format in formats for row in measure(loaded, prompt_format)]
    report(
        f"prompt formats for {model.name if path else DEFAULT_MODEL}: {len(PROMPTS)} prompts, "
        f"greedy, at most {PARAMS.max_tokens} tokens ({time.perf_counter() - started:.0f} s)",
        rows,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
