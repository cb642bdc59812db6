"""A model's tool calls as the two protocols send them, read into `ToolCalls` pieces.

Ollama sends each call whole in one line (`message.tool_calls`, arguments as an object);
OpenAI-compatible servers stream them in fragments (`delta.tool_calls`, by `index`, the
arguments' JSON text cut anywhere), finished by `finish_reason: "tool_calls"`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from chatcore.types import ChatMessage, ToolCall, ToolCalls


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def from_ollama(calls: Any) -> ToolCalls:
    """Ollama's `message.tool_calls`; a call without an id (older servers) gets one."""
    read: list[ToolCall] = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            continue
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        ident = call.get("id")
        name = str(function["name"])
        read.append(ToolCall(str(ident) if ident else new_call_id(), name, text, sent=call))
    return ToolCalls(read)


def openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages in OpenAI's shape: an assistant's calls with their ids and arguments as text,
    each tool result with the id of its call (an Ollama client names none: the results after
    an assistant message answer its calls in order, as Ollama pairs them)."""
    wired: list[dict[str, Any]] = []
    pending: list[str] = []  # ids of the last assistant message's calls not yet answered
    for message in messages:
        out: dict[str, Any] = {
            k: v for k, v in message.items() if k not in ("tool_calls", "tool_name")
        }
        if calls := message.get("tool_calls"):
            out["tool_calls"] = [call.as_openai() for call in calls]
            pending = [c.id for c in calls]
        if message["role"] == "tool" and "tool_call_id" not in out:
            out["tool_call_id"] = pending.pop(0) if pending else new_call_id()
        elif message["role"] == "tool" and out["tool_call_id"] in pending:
            pending.remove(out["tool_call_id"])
        wired.append(out)
    return wired


class OpenAIToolDeltas:
    """Gathers streamed `delta.tool_calls` fragments until the reply ends."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        for delta in deltas if isinstance(deltas, list) else ():
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", len(self._calls))
            call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.get("id") or call["id"]
            function = delta.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""

    def calls(self) -> ToolCalls | None:
        if not self._calls:
            return None
        return ToolCalls(
            ToolCall(call["id"] or new_call_id(), call["name"], call["arguments"] or "{}")
            for _, call in sorted(self._calls.items())
        )
