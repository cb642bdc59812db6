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
    return [call.as_ollama() for call in calls]


def for_openai(calls: Sequence[ToolCall], streamed: bool) -> list[dict[str, Any]]:
    if streamed:  # each call whole in one delta, at its index
        return [{"index": i, **call.as_openai()} for i, call in enumerate(calls)]
    return [call.as_openai() for call in calls]


def calls_in_request(raw: Any) -> list[ToolCall]:
    """An assistant message's `tool_calls` as a client sends them back, in either protocol:
    OpenAI's arguments as JSON text with an id, Ollama's as an object (kept as it came)."""
    calls: list[ToolCall] = []
    for index, call in enumerate(raw if isinstance(raw, list) else ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            calls.append(
                ToolCall(str(call.get("id") or f"call_{index}"), function["name"], arguments)
            )
        else:
            text = json.dumps(arguments or {}, ensure_ascii=False)
            ident = str(call.get("id") or f"call_{index}")
            calls.append(ToolCall(ident, function["name"], text, sent=call))
    return calls
