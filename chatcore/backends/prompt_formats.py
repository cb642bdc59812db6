"""How a conversation becomes the one prompt string an embedded model continues.

A model whose GGUF carries a chat template gets its own template. A base model without one gets a
plain transcript. Measured on Gemma 3 270M (`python -m bench.prompt_formats`: 12 everyday prompts,
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


class ChatTemplate:
    """The Jinja chat template a GGUF file carries (`tokenizer.chat_template`)."""

    name = "chat template"
    stop = ()
    special_tokens = True

    def __init__(self, template: str, bos_token: str, eos_token: str) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(
            template=template, bos_token=bos_token, eos_token=eos_token
        )

    def render(self, messages: Sequence[ChatMessage]) -> str:
        try:
            return self._render(messages)
        except Exception:  # many templates refuse a system role: fold it into the first turn
            if not messages or messages[0]["role"] != "system":
                raise
            return self._render(system_folded_into_first_turn(messages))

    def _render(self, messages: Sequence[ChatMessage]) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return self._formatter(messages=plain).prompt  # type: ignore[arg-type]


def system_folded_into_first_turn(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    if not rest:
        return [ChatMessage(role="user", content="\n\n".join(system))]
    first = ChatMessage(role=rest[0]["role"], content="\n\n".join([*system, rest[0]["content"]]))
    return [first, *rest[1:]]


def prompt_format_for(
    metadata: dict[str, str], bos_token: str, eos_token: str, use_template: bool = True
) -> PromptFormat:
    """The model's own chat template when it has one (and may use it), else the transcript."""
    template = metadata.get("tokenizer.chat_template")
    if use_template and template:
        return ChatTemplate(template, bos_token, eos_token)
    return Transcript()
