"""Conversations of any length written at once through the import (chatcore/transfer.py's
format), for the bounded Chat window's tests and the browser benchmark.

Conversation `size-N` holds N messages: user turns "Question k: tell me more." and replies
"Answer k. ..." with a little Markdown, each reply with a complete run of MODEL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

MODEL = "llama3.2:latest"
OPTIONS = {
    "temperature": 0.7,
    "top_p": 0.9,
    "max_tokens": 500,
    "system_prompt": "",
    "seed": None,
    "stop": [],
    "think": None,
    "collections": [],
}
PARAGRAPH = (
    "Here is a **considered** answer with a little Markdown: a list of points, some `code`, "
    "and a sentence long enough to wrap on a wide screen, as a model's replies do."
)


def conversation_document(sizes: list[int], host: str) -> bytes:
    """An export (chatcore/transfer.py's format) with one conversation of each size."""
    started = datetime.now(UTC) - timedelta(days=1)
    conversations = []
    first_id = 0
    for size in sizes:
        messages = []
        for index in range(size):
            at = (started + timedelta(seconds=10 * index)).isoformat()
            user = index % 2 == 0
            text = f"Question {index // 2}: tell me more." if user else message_text(index)
            messages.append(
                {
                    "id": first_id + index + 1,
                    "role": "user" if user else "assistant",
                    "content": text,
                    "created_at": at,
                    "superseded": False,
                    "thinking": "",
                    "images": [],
                    "runs": [] if user else [run_record(first_id + index, host, at)],
                }
            )
        first_id += size
        last = messages[-1]["created_at"]
        conversations.append(
            {
                "id": f"size-{size}",
                "title": f"A conversation of {size} messages",
                "created_at": started.isoformat(),
                "updated_at": last,
                "messages": messages,
            }
        )
    document = {"format": "ollama-chat-dashboard/conversations", "version": 2}
    document |= {"exported_at": datetime.now(UTC).isoformat(), "conversations": conversations}
    return json.dumps(document | {"images": {}}).encode()


def message_text(index: int) -> str:
    return f"Answer {index // 2}. {PARAGRAPH}\n\n- one\n- two\n- three\n\n{PARAGRAPH}"


def run_record(index: int, host: str, at: str) -> dict[str, Any]:
    return {
        "id": index + 1,
        "model": MODEL,
        "backend": "ollama",
        "host": host,
        "options": OPTIONS,
        "status": "complete",
        "error": None,
        "started_at": at,
        "finished_at": at,
        "ttft_ms": 80.0,
        "prompt_tokens": 20,
        "completion_tokens": 60,
        "total_duration_ns": 900_000_000,
        "load_duration_ns": 1_000_000,
        "prompt_eval_duration_ns": 10_000_000,
        "eval_duration_ns": 800_000_000,
        "done_reason": "stop",
        "context_dropped": 0,
        "prompt_chars": 400,
        "num_ctx": None,
        "request_id": None,
        "attempts": 1,
        "client": None,
        "answer_ms": 80.0,
        "thinking_ms": None,
        "thinking_tokens": 0,
        "answer_tokens": 60,
    }
