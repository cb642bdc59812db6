"""The JSON export's shape, version by version: strict pydantic models a file is checked with.

Version 1: conversations, messages and their runs. 2 added reasoning, its metrics and images
(kept once, by hash). 3 the evaluation (compare rounds, votes, suites, judge verdicts,
collaboration steps). 4 message trees (each message's parent, forks, the open branch). 5 what
an "export all" still left behind: presets, each run's context fit (run_context) and what the
knowledge base gave it (run_retrievals, run_citations), and the context summaries kept in a
conversation. Every older version still imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from chatcore.errors import InvalidInput
from chatcore.evaluation_transfer import EvaluationV1
from chatcore.types import RunStatus, checked_conversation_id

FORMAT = "ollama-chat-dashboard/conversations"
VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
MAX_ERRORS_SHOWN = 5

ConversationId = Annotated[str, AfterValidator(checked_conversation_id)]
Role = Literal["system", "user", "assistant", "tool"]  # tool: a tool's result, relayed


class ImportRefused(InvalidInput):
    """The file can't be imported; `str(error)` says why. Nothing was written."""


# --- the file's shape (version 1) ---


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RunV1(Strict):
    id: int
    model: str
    backend: str
    host: str
    options: dict[str, Any]
    status: RunStatus = Field(strict=False)  # the value as a string
    error: str | None
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_duration_ns: int | None
    load_duration_ns: int | None
    prompt_eval_duration_ns: int | None
    eval_duration_ns: int | None
    done_reason: str | None
    context_dropped: int
    prompt_chars: int | None
    num_ctx: int | None
    request_id: str | None = None  # added after version 1 shipped: older files lack it
    attempts: int | None = 1  # later columns have defaults: older files lack them
    client: str | None = None


class MessageV1(Strict):
    id: int
    role: Role
    content: str
    created_at: AwareDatetime
    superseded: bool
    runs: list[RunV1]


class ConversationV1(Strict):
    id: ConversationId
    title: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    messages: list[MessageV1]


# --- version 2: a reply's reasoning and its metrics, images kept once by hash ---


class RunV2(RunV1):
    answer_ms: float | None = None
    thinking_ms: float | None = None
    thinking_tokens: int | None = None
    answer_tokens: int | None = None
    context_summarised: int = 0  # added after version 4 shipped: older files lack it
    tool_calls: str | None = None  # a proxied reply's tool calls, as JSON (absent before)


class MessageV2(MessageV1):
    thinking: str = ""
    images: list[str] = Field(default_factory=list)  # sha256 keys of the document's `images`
    runs: list[RunV2]  # type: ignore[assignment]


class ConversationV2(ConversationV1):
    messages: list[MessageV2]  # type: ignore[assignment]


class ImageV2(Strict):
    mime: str
    data: str  # base64 of the file


# --- version 4: conversations as trees (each message's parent, forks, the open branch) ---


class MessageV4(Strict):
    id: int
    parent_id: int | None  # an earlier message of the same conversation; None: a first one
    forked_from: int | None = None  # the message a fork copied; its runs are that one's
    role: Role
    content: str
    created_at: AwareDatetime
    thinking: str = ""
    images: list[str] = Field(default_factory=list)
    runs: list[RunV2]


class ConversationV4(Strict):
    id: ConversationId
    title: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    open_message_id: int | None = None  # the message the branch on screen goes through
    messages: list[MessageV4]


@dataclass(frozen=True)
class ImportReport:
    imported: list[str]
    skipped: list[str]  # already present, left as they were
    messages: int
    runs: int
    skipped_titles: list[str] = field(default_factory=list)  # what the user knows them by
    presets: list[str] = field(default_factory=list)  # added; one of a name already here is kept


# --- version 5: presets, each run's context fit and knowledge, context summaries ---


class RunContextV5(Strict):
    """How the run's prompt was fitted into its window (table run_context)."""

    model: str
    estimated_tokens: int
    window_tokens: int
    dropped: int
    summarised: int


class RetrievalV5(Strict):
    """What the knowledge base gave the run (table run_retrievals)."""

    collections: list[str]
    retrieval_ms: float
    chunks_used: int


class CitationV5(Strict):
    """A passage the reply cited (table run_citations). The chunk and document ids are the
    exporting database's: kept as they were, the text travels with the citation."""

    number: int
    chunk_id: int
    document_id: int
    document_name: str
    collection: str
    heading: str | None
    page: int | None
    text: str
    score: float
    similarity: float | None


class RunV5(RunV2):
    context: RunContextV5 | None = None
    retrieval: RetrievalV5 | None = None
    citations: list[CitationV5] = Field(default_factory=list)


class MessageV5(MessageV4):
    runs: list[RunV5]  # type: ignore[assignment]


class SummaryV5(Strict):
    """A note summarising the conversation's first `covered` context messages (table
    context_summaries)."""

    covered: int
    covered_hash: str
    model: str
    summary: str
    created_at: AwareDatetime


class ConversationV5(ConversationV4):
    messages: list[MessageV5]  # type: ignore[assignment]
    summaries: list[SummaryV5] = Field(default_factory=list)


class PresetV5(Strict):
    name: str = Field(min_length=1)
    params: dict[str, Any]
    updated_at: AwareDatetime


class HeaderV5(Strict):
    """Everything of a file but its conversations and images, which are read one at a time."""

    format: Literal["ollama-chat-dashboard/conversations"]
    version: Literal[1, 2, 3, 4, 5]
    exported_at: AwareDatetime
    presets: list[PresetV5] = Field(default_factory=list)
    # compare rounds, votes, suites, suite runs, judge verdicts (chatcore/evaluation_transfer.py)
    evaluation: EvaluationV1 | None = None


CONVERSATION_MODELS: dict[int, type[Strict]] = {
    1: ConversationV1,
    2: ConversationV2,
    3: ConversationV2,
    4: ConversationV4,
    5: ConversationV5,
}


def as_tree(conversation: ConversationV2) -> ConversationV5:
    """A conversation from before trees (versions 1 to 3) as one branch, as migration 11 made of
    the database. A message follows the newest visible message before it, so a superseded
    reply and the reply that replaced it are siblings."""
    messages, last_visible = [], None
    for message in sorted(conversation.messages, key=lambda m: m.id):
        fields = message.model_dump(exclude={"superseded"})
        messages.append({**fields, "parent_id": last_visible})
        if not message.superseded:
            last_visible = message.id
    return ConversationV5.model_validate(
        {**conversation.model_dump(), "messages": messages}, strict=False
    )


def upgraded(conversation: Strict) -> ConversationV5:
    """A conversation of any version read as version 5."""
    if isinstance(conversation, ConversationV5):
        return conversation
    if isinstance(conversation, ConversationV4):
        return ConversationV5.model_validate(conversation.model_dump(), strict=False)
    if isinstance(conversation, ConversationV1) and not isinstance(conversation, ConversationV2):
        conversation = ConversationV2.model_validate(conversation.model_dump())
    assert isinstance(conversation, ConversationV2)
    return as_tree(conversation)
