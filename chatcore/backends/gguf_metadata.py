"""The few facts the embedded engine needs from a GGUF file's header, read without loading it.

Whether the file carries a chat template decides how its conversations are prompted before the
model is started (the server is given the transcript template when it has none), and its trained
context length bounds the window. GGUF keeps these as typed key/value pairs after a short header:
https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
# Value types: fixed-size scalars by their struct format; 8 is a string, 9 an array.
SCALARS = dict(enumerate("BbHhIif?")) | {10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


class NotGGUF(ValueError):
    """The file is not a GGUF model (or is cut short)."""


@dataclass(frozen=True)
class GGUFFacts:
    architecture: str | None
    context_length: int | None  # tokens the model was trained for
    chat_template: str | None


def read_facts(path: Path) -> GGUFFacts:
    """Architecture, trained context length and chat template from the file's metadata."""
    values: dict[str, object] = {}
    with path.open("rb") as file:
        if file.read(4) != MAGIC:
            raise NotGGUF(f"{path} is not a GGUF file")
        version, _tensors, pairs = struct.unpack("<IQQ", exact(file, 20))
        if version < 2:
            raise NotGGUF(f"{path} is GGUF version {version}; only 2 and later are read")
        for _ in range(pairs):
            key = read_string(file)
            values[key] = read_value(file, read_scalar(file, "I"))
    architecture = values.get("general.architecture")
    trained = values.get(f"{architecture}.context_length")
    template = values.get("tokenizer.chat_template")
    return GGUFFacts(
        architecture=architecture if isinstance(architecture, str) else None,
        context_length=trained if isinstance(trained, int) and trained > 0 else None,
        chat_template=template if isinstance(template, str) and template.strip() else None,
    )


def read_value(file: BinaryIO, kind: int) -> object:
    if kind in SCALARS:
        return read_scalar(file, SCALARS[kind])
    if kind == STRING:
        return read_string(file)
    if kind == ARRAY:
        item_kind, count = struct.unpack("<IQ", exact(file, 12))
        if item_kind in SCALARS:  # skipped: no array is needed, and vocabularies are large
            file.seek(count * struct.calcsize("<" + SCALARS[item_kind]), 1)
        else:
            for _ in range(count):
                read_value(file, item_kind)
        return None
    raise NotGGUF(f"unknown GGUF value type {kind}")


def read_scalar(file: BinaryIO, code: str) -> int | float | bool:
    fmt = "<" + code
    return struct.unpack(fmt, exact(file, struct.calcsize(fmt)))[0]


def read_string(file: BinaryIO) -> str:
    length = read_scalar(file, "Q")
    return exact(file, int(length)).decode("utf-8", errors="replace")


def exact(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise NotGGUF("the GGUF header ends early")
    return data
