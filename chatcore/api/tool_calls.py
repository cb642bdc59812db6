"""A reply's tool calls in each proxy's protocol, given with the reply's end.

Ollama clients get Ollama's `message.tool_calls` (a call from an Ollama host exactly as it came;
from an OpenAI-compatible host, its arguments' JSON as an object). OpenAI clients get
`tool_calls` with each call's id and its arguments as JSON text: whole in one `delta` when
streamed (the fragments a server sent are joined), in `message` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chatcore.types import ToolCall


def for_ollama(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        call.sent
        if call.sent is not None
        else {"function": {"name": call.name, "arguments": arguments_object(call.arguments)}}
        for call in calls
    ]


def for_openai(calls: Sequence[ToolCall], streamed: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        entry: dict[str, Any] = {"index": index} if streamed else {}
        entry |= {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        out.append(entry)
    return out


def arguments_object(text: str) -> dict[str, Any]:
    """Ollama's clients take the arguments as an object; text that is not one becomes {}."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
