"""Import a JSON export of any size: checked whole in a first streaming pass, then applied in one
transaction in a second. It all lands or none of it, and memory stays flat: the file is read
with ijson, one conversation (or one image) at a time, and what the passes keep between them
is the ids (8 bytes each) and the image hashes.

The first pass checks the JSON syntax, the format and version, every conversation against its
version's strict model, ids unique within the file, each conversation's tree and every image
(decodes, is an image, has its hash). Conversations already in the database are skipped by id
and reported. Message, run and evaluation ids are the database's own surrogates: an import
keeps the file's ids when they are free (an import into an empty database: exporting it again
gives the same file), and otherwise moves them to a fresh block, in the same order.
"""

from __future__ import annotations

import base64
import bisect
import json
import tempfile
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import ijson
from pydantic import ValidationError

from chatcore.errors import InvalidInput
from chatcore.evaluation_transfer import import_evaluation
from chatcore.images import valid_image
from chatcore.storage import images as image_store
from chatcore.storage import presets as preset_store
from chatcore.storage import transfer as queries
from chatcore.storage.db import Database
from chatcore.transfer_format import (
    CONVERSATION_MODELS,
    FORMAT,
    MAX_ERRORS_SHOWN,
    READABLE_VERSIONS,
    ConversationV5,
    HeaderV5,
    ImageV2,
    ImportRefused,
    ImportReport,
    upgraded,
)
from chatcore.types import Image

BATCH_MESSAGES = 10_000  # messages spooled at a time (one Arrow table per table)
UNKNOWN = " problem"  # where read_head notes a top-level part no version has, or a wrong one
HEAD_KEYS = {"format", "version", "exported_at", "presets", "evaluation"}
BULK_KEYS = {"conversations": "start_array", "images": "start_map"}
JSON_ERRORS = (ijson.JSONError, UnicodeDecodeError, ValueError)

Document = dict[str, Any]


class SortedIds:
    """A set of ints kept as a sorted array of 8-byte values (a million ids: 8 MB)."""

    def __init__(self, values: array) -> None:
        self.values = array("q", sorted(values))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        at = bisect.bisect_left(self.values, value)
        return at < len(self.values) and self.values[at] == value

    def __len__(self) -> int:
        return len(self.values)

    def repeated(self) -> list[int]:
        values = self.values
        return sorted({values[i] for i in range(1, len(values)) if values[i] == values[i - 1]})


class MovedIds(Mapping[int, int]):
    """The imported ids of the file -> their ids in the database (the file's plus an offset)."""

    def __init__(self, ids: SortedIds, offset: int) -> None:
        self.ids, self.offset = ids, offset

    def __getitem__(self, file_id: int) -> int:
        if file_id not in self.ids:
            raise KeyError(file_id)
        return file_id + self.offset

    def __contains__(self, file_id: object) -> bool:
        return file_id in self.ids

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids.values)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Plan:
    """What the checking pass learnt, for the applying pass."""

    header: HeaderV5
    conversations: list[tuple[str, str]] = field(default_factory=list)  # (id, title) in order
    message_ids: array = field(default_factory=lambda: array("q"))
    message_owner: array = field(default_factory=lambda: array("q"))  # conversation's place
    run_ids: array = field(default_factory=lambda: array("q"))
    run_owner: array = field(default_factory=lambda: array("q"))
    images: set[str] = field(default_factory=set)  # the hashes the file holds, each checked


# --- the first pass: check everything ---


def checked_plan(file: IO[bytes]) -> Plan:
    """The file checked whole, or ImportRefused with a message a person can act on."""
    plan = Plan(read_header(file))
    seen_conversations: set[str] = set()
    wanted_images: set[str] = set()
    tree_problem: str | None = None  # told after repeated ids, which cause such problems
    for place, conversation in enumerate(conversations_in(file, plan.header.version)):
        if conversation.id in seen_conversations:
            raise ImportRefused(
                f"The file holds the same conversation id more than once: {conversation.id}."
            )
        seen_conversations.add(conversation.id)
        if tree_problem is None:
            tree_problem = tree_problem_of(conversation)
        plan.conversations.append((conversation.id, conversation.title))
        try:  # ids are 64-bit integers in the database
            note_ids(plan, conversation, place)
        except OverflowError as error:
            raise ImportRefused(
                f"Conversation '{conversation.id}' holds an id too large for the database."
            ) from error
        wanted_images.update(h for m in conversation.messages for h in m.images)
    for kind, ids in (("message", plan.message_ids), ("run", plan.run_ids)):
        if repeated := SortedIds(ids).repeated():
            shown = ", ".join(map(str, repeated[:MAX_ERRORS_SHOWN]))
            raise ImportRefused(f"The file holds the same {kind} id more than once: {shown}.")
    if tree_problem is not None:
        raise ImportRefused(tree_problem)
    for sha256, image in images_in(file, plan.header.version):
        check_image(sha256, image)
        plan.images.add(sha256)
    if missing := sorted(wanted_images - plan.images):
        raise ImportRefused(f"A message names an image the file does not hold: {missing[0][:12]}.")
    return plan


def note_ids(plan: Plan, conversation: ConversationV5, place: int) -> None:
    for message in conversation.messages:
        plan.message_ids.append(message.id)
        plan.message_owner.append(place)
        for run in message.runs:
            plan.run_ids.append(run.id)
            plan.run_owner.append(place)


def read_header(file: IO[bytes]) -> HeaderV5:
    """The file's small parts (format, version, presets, evaluation), read from its start up to
    the first bulky part; a part that comes after the bulk (an older export's evaluation) is
    looked for with a scan of its own."""
    file.seek(0)
    fields: Document = {}
    try:
        complete = read_head(ijson.parse(file, use_float=True), fields)
        if not complete:  # an older export: its evaluation came after the conversations
            missing = HEAD_KEYS - fields.keys()
            if isinstance(fields.get("version"), int) and fields["version"] < 5:
                missing.discard("presets")
            for key in sorted(missing):
                file.seek(0)
                for value in ijson.items(file, key, use_float=True):
                    fields[key] = value
    except ImportRefused:
        raise
    except JSON_ERRORS as error:
        raise not_json(error) from error
    if fields.get("format") != FORMAT:
        raise ImportRefused(
            f'This is not a conversation export of this dashboard (it lacks "format": "{FORMAT}").'
        )
    version = fields.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ImportRefused(
            f"The file's format version is {version!r}; "
            f"this app reads versions {', '.join(map(str, READABLE_VERSIONS))}."
        )
    if problem := fields.pop(UNKNOWN, None):
        raise ImportRefused(f"The file does not match the export format: {problem}.")
    if version < 5 and "presets" in fields:
        raise ImportRefused("The file does not match the export format: presets: a version 5 part.")
    try:  # strict: no "12" for 12, no 1 for true; datetimes are ISO strings with a zone
        return HeaderV5.model_validate_json(json.dumps(fields))
    except ValidationError as error:
        raise ImportRefused(validation_message(error)) from error


def read_head(events: Iterator[tuple[str, str, Any]], fields: Document) -> bool:
    """Top-level parts into `fields` until a bulky one starts; True when the whole document was
    read (nothing comes after)."""
    prefix, event, _ = next(events, ("", "", None))
    if (prefix, event) != ("", "start_map"):
        raise ImportRefused(
            f'This is not a conversation export of this dashboard (it lacks "format": "{FORMAT}").'
        )
    key = ""
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            key = value
        elif prefix == "" and event == "end_map":
            return True
        elif key in BULK_KEYS:
            if event != BULK_KEYS[key]:
                kind = "a list" if key == "conversations" else "an object"
                fields.setdefault(UNKNOWN, f"{key}: should be {kind}")
                whole_value(event, value, events)
                continue
            return False
        elif key in HEAD_KEYS:
            fields[key] = whole_value(event, value, events)
        else:  # judged once the format is known: a foreign file is told so first
            whole_value(event, value, events)  # read past it
            fields.setdefault(UNKNOWN, f"{key}: Extra inputs are not permitted")
    return True


def whole_value(event: str, value: Any, events: Iterator[tuple[str, str, Any]]) -> Any:
    """The value that starts with (event, value), built from the events that follow."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, inner, inner_value in events:
        builder.event(inner, inner_value)
        depth += inner in ("start_map", "start_array")
        depth -= inner in ("end_map", "end_array")
        if depth == 0:
            return builder.value
    raise ImportRefused("The file is not valid JSON; it may be truncated or not an export.")


def conversations_in(file: IO[bytes], version: int) -> Iterator[ConversationV5]:
    """The file's conversations one at a time, each checked against its version's model and
    read as version 5."""
    model = CONVERSATION_MODELS[version]
    file.seek(0)
    place = 0
    try:
        for document in ijson.items(file, "conversations.item", use_float=True):
            try:  # strict JSON validation: datetimes are ISO strings with a zone
                conversation = model.model_validate_json(json.dumps(document))
            except ValidationError as error:
                raise ImportRefused(validation_message(error, f"conversations.{place}.")) from error
            yield upgraded(conversation)
            place += 1
    except ImportRefused:
        raise
    except JSON_ERRORS as error:
        raise not_json(error) from error


def images_in(file: IO[bytes], version: int) -> Iterator[tuple[str, ImageV2]]:
    """The file's images one at a time, by hash, each checked against the model."""
    if version == 1:
        return
    file.seek(0)
    try:
        for sha256, document in ijson.kvitems(file, "images", use_float=True):
            try:
                yield sha256, ImageV2.model_validate_json(json.dumps(document))
            except ValidationError as error:
                raise ImportRefused(validation_message(error, f"images.{sha256}.")) from error
    except ImportRefused:
        raise
    except JSON_ERRORS as error:
        raise not_json(error) from error


def not_json(error: Exception) -> ImportRefused:
    return ImportRefused(
        f"The file is not valid JSON ({error}); it may be truncated or not an export."
    )


def tree_problem_of(conversation: ConversationV5) -> str | None:
    """Each parent must be an earlier message of the same conversation, and the open branch go
    through one of the conversation's messages; what is wrong, or None."""
    ids = {m.id for m in conversation.messages}
    for message in conversation.messages:
        parent = message.parent_id
        if parent is not None and (parent not in ids or parent >= message.id):
            return (
                f"Message {message.id} follows message {parent}, which is not an earlier "
                f"message of conversation '{conversation.id}'."
            )
    if conversation.open_message_id is not None and conversation.open_message_id not in ids:
        return (
            f"Conversation '{conversation.id}' opens on message "
            f"{conversation.open_message_id}, which it does not hold."
        )
    return None


def check_image(sha256: str, stored: ImageV2) -> Image:
    """The image decodes, is an image and has its hash."""
    try:
        data = base64.b64decode(stored.data, validate=True)
        image = valid_image(data, f"Image {sha256[:12]}")
    except (ValueError, InvalidInput) as error:
        raise ImportRefused(f"The file holds a damaged image: {error}") from error
    if image.sha256 != sha256:
        raise ImportRefused(f"Image {sha256[:12]} does not match its hash.")
    return image


def validation_message(error: ValidationError, prefix: str = "") -> str:
    problems = [
        f"{prefix}{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()[:MAX_ERRORS_SHOWN]
    ]
    more = error.error_count() - len(problems)
    suffix = f" (and {more} more)" if more > 0 else ""
    return "The file does not match the export format: " + "; ".join(problems) + suffix


# --- the second pass: apply it in one transaction ---


def import_file(db: Database, file: IO[bytes]) -> ImportReport:
    """Check the whole file, then add its new conversations (and, from a whole export, its
    presets and evaluation) in one transaction."""
    plan = checked_plan(file)
    try:  # the transaction rolls back whole on any refusal
        with db.transaction(summaries=True) as cur:  # Stats counts the imported runs
            return apply_plan(cur, file, plan)
    except InvalidInput as error:
        if isinstance(error, ImportRefused):
            raise
        raise ImportRefused(str(error)) from error


def apply_plan(cur: duckdb.DuckDBPyConnection, file: IO[bytes], plan: Plan) -> ImportReport:
    present = queries.existing_ids(cur, [c for c, _ in plan.conversations])
    skipped = {place for place, (c, _) in enumerate(plan.conversations) if c in present}
    message_ids = MovedIds(
        *imported(cur, plan.message_ids, plan.message_owner, skipped, "messages")
    )
    run_ids = MovedIds(*imported(cur, plan.run_ids, plan.run_owner, skipped, "runs"))
    with tempfile.TemporaryDirectory(prefix="chat-import-") as folder:
        spool = queries.Spool(cur, Path(folder))
        batch = Batch(message_ids, run_ids)
        wanted_images: set[str] = set()
        for conversation in conversations_in(file, plan.header.version):
            if conversation.id in present:
                continue
            batch.add(conversation)
            wanted_images.update(h for m in conversation.messages for h in m.images)
            if batch.messages >= BATCH_MESSAGES:
                batch.flush(spool)
        batch.flush(spool)
        spool.insert_all()
    for sha256, stored in images_in(file, plan.header.version):
        if sha256 in wanted_images:
            image_store.save_images(cur, [check_image(sha256, stored)])
    presets = preset_store.add_missing_presets(
        cur, [(p.name, p.params, p.updated_at) for p in plan.header.presets]
    )
    if plan.header.evaluation is not None:
        import_evaluation(cur, plan.header.evaluation, run_ids)
    return ImportReport(
        imported=[c for c, _ in plan.conversations if c not in present],
        skipped=[c for c, _ in plan.conversations if c in present],
        messages=len(message_ids),
        runs=len(run_ids),
        skipped_titles=[title for c, title in plan.conversations if c in present],
        presets=presets,
    )


def imported(
    cur: duckdb.DuckDBPyConnection, ids: array, owners: array, skipped: set[int], table: str
) -> tuple[SortedIds, int]:
    """The file's ids of the rows that will be imported, and the offset that makes them fresh."""
    kept = SortedIds(
        array("q", (i for i, owner in zip(ids, owners, strict=True) if owner not in skipped))
    )
    if not kept.values:
        return kept, 0
    lowest, highest = kept.values[0], kept.values[-1]
    return kept, queries.id_offset(cur, table, f"{table}_id_seq", lowest, highest)


class Batch:
    """Rows of a few conversations, gathered and then spooled to Parquet in bulk."""

    def __init__(self, message_ids: MovedIds, run_ids: MovedIds) -> None:
        self.message_ids, self.run_ids = message_ids, run_ids
        self.tables: dict[str, list[Document]] = {}
        self.messages = 0

    def rows(self, table: str) -> list[Document]:
        return self.tables.setdefault(table, [])

    def add(self, conversation: ConversationV5) -> None:
        new_message, new_run = self.message_ids.__getitem__, self.run_ids.__getitem__
        c = conversation
        self.rows("conversations").append(
            {"id": c.id, "title": c.title, "created_at": c.created_at, "updated_at": c.updated_at}
        )
        if c.open_message_id is not None:
            self.rows("open_branches").append(
                {"conversation_id": c.id, "message_id": new_message(c.open_message_id)}
            )
        for summary in c.summaries:
            self.rows("context_summaries").append({"conversation_id": c.id, **summary.model_dump()})
        for m in c.messages:
            self.messages += 1
            self.rows("messages").append(
                {
                    "id": new_message(m.id),
                    "conversation_id": c.id,
                    **m.model_dump(include={"role", "content", "created_at", "thinking"}),
                    "parent_id": None if m.parent_id is None else new_message(m.parent_id),
                    # a fork whose original is not imported keeps its text without its runs
                    "forked_from": new_message(m.forked_from)
                    if m.forked_from is not None and m.forked_from in self.message_ids
                    else None,
                }
            )
            for position, sha256 in enumerate(m.images):
                self.rows("message_images").append(
                    {"message_id": new_message(m.id), "position": position, "sha256": sha256}
                )
            for r in m.runs:
                self.add_run(c.id, new_message(m.id), new_run(r.id), r)

    def add_run(self, conversation_id: str, message_id: int, run_id: int, r: Any) -> None:
        self.rows("runs").append(
            {
                **r.model_dump(exclude={"options", "context", "retrieval", "citations"}),
                "id": run_id,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "options": json.dumps(r.options),
            }
        )
        if r.context is not None:
            self.rows("run_context").append(
                {"run_id": run_id, "conversation_id": conversation_id, **r.context.model_dump()}
            )
        if r.retrieval is not None:
            self.rows("run_retrievals").append({"run_id": run_id, **r.retrieval.model_dump()})
        for citation in r.citations:
            self.rows("run_citations").append({"run_id": run_id, **citation.model_dump()})

    def flush(self, spool: queries.Spool) -> None:
        for table, rows in self.tables.items():
            spool.write(table, rows)
        self.tables, self.messages = {}, 0
