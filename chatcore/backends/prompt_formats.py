"""How a conversation becomes the one prompt string an embedded model continues.

A model whose GGUF carries a chat template gets its own template (llama.cpp's server applies it).
A base model without one gets a plain transcript, handed to the server as a template of its own.
Measured on Gemma 3 270M (`python -m bench.prompt_formats`: 12 everyday prompts,
greedy, at most 80 tokens each): in Gemma's turn markers it ended 0 of 12 replies on its own,
echoed the question in 11 and repeated a sentence in 11; in the transcript below it ended all 12
cleanly at the next speaker label, with no loops, and the one-line preamble stopped it echoing the
question (0 of 12 with it, 3 of 12 without).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatcore.types import ChatMessage

TRANSCRIPT_PREAMBLE = "A conversation between a curious user and a helpful assistant."
SPEAKERS = {"user": "User", "assistant": "Assistant", "system": "System"}


class PromptFormat(Protocol):
    name: str
    stop: tuple[str, ...]  # text that ends a reply, beside the model's end-of-turn tokens
    special_tokens: bool  # whether the rendered text spells special tokens (<start_of_turn>...)

    def render(self, messages: Sequence[ChatMessage]) -> str: ...


class Transcript:
    """`User: ...` / `Assistant: ...` lines after a preamble (the system prompt when one is set)."""

    name = "transcript"
    stop = ("\nUser:", "\nAssistant:")
    special_tokens = False  # a user typing "<bos>" gets the text, not the token

    def render(self, messages: Sequence[ChatMessage]) -> str:
        leading = 0
        while leading < len(messages) and messages[leading]["role"] == "system":
            leading += 1
        preamble = "\n\n".join(m["content"] for m in messages[:leading]) or TRANSCRIPT_PREAMBLE
        lines = [f"{SPEAKERS.get(m['role'], 'User')}: {m['content']}" for m in messages[leading:]]
        return "\n".join([f"{preamble}\n", *lines, "Assistant:"])


# The transcript as a Jinja chat template, for llama.cpp's server to apply to a base model (the
# same text as Transcript.render: tests/backends/test_embedded.py checks it on the server).
TRANSCRIPT_TEMPLATE = (
    "{%- set ns = namespace(leading=true, preamble='') -%}"
    "{%- for m in messages -%}"
    "{%- if ns.leading and m['role'] == 'system' -%}"
    "{%- set ns.preamble = ns.preamble + ('\\n\\n' if ns.preamble else '') + m['content'] -%}"
    "{%- else -%}"
    "{%- if ns.leading -%}"
    "{{ (ns.preamble or '" + TRANSCRIPT_PREAMBLE + "') + '\\n\\n' }}"
    "{%- set ns.leading = false -%}"
    "{%- endif -%}"
    "{{ {'user': 'User', 'assistant': 'Assistant', 'system': 'System'}.get(m['role'], 'User')"
    " + ': ' + m['content'] + '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if ns.leading -%}"
    "{{ (ns.preamble or '" + TRANSCRIPT_PREAMBLE + "') + '\\n\\n' }}"
    "{%- endif -%}"
    "Assistant:"
)
