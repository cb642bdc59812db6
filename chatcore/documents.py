"""From a user's file to passages: markitdown turns it into Markdown, semchunk cuts that into
overlapping chunks inside each heading's section, and each chunk keeps its heading and page.

Also the keyword side's terms: words for alphabetic scripts, character pairs for Chinese (which
has no spaces to split words at), so one SQL query can rank passages in either language.
"""

from __future__ import annotations

import io
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from chatcore.errors import DocumentTooLarge, InvalidInput, UnsupportedDocument
from chatcore.types import Chunk

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
CHUNK_TOKENS = 200  # small enough for a 512-token embedding model, large enough to hold a fact
OVERLAP = 0.15  # of a chunk, repeated from its neighbour so a fact cut in two is still found
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
}
PLAIN = (".md", ".markdown", ".txt")
PAGE_BREAK = "\x0c"  # what the PDF converter puts between pages
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_RUN = re.compile(f"[{CJK}]+")
WORD = re.compile(rf"[^\W{CJK}_]+", re.UNICODE)
TOKEN_ESTIMATE = re.compile(rf"[{CJK}]|[^\W{CJK}_]+|[^\w\s]")


@dataclass(frozen=True)
class Converted:
    name: str
    media_type: str
    size_bytes: int
    markdown: str
    chunks: list[Chunk]


def extension_of(name: str) -> str:
    return PurePath(name).suffix.lower()


def check_upload(name: str, data: bytes) -> str:
    """The file's media type; refuses an empty, oversized or unknown file before any work."""
    extension = extension_of(name)
    if extension not in MEDIA_TYPES:
        known = ", ".join(sorted({e.lstrip(".") for e in MEDIA_TYPES}))
        raise UnsupportedDocument(
            f"'{name}' is not a type the knowledge base reads (it reads {known})."
        )
    if not data:
        raise InvalidInput(f"'{name}' is empty.")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"'{name}' is {len(data) / 1e6:.1f} MB; the knowledge base takes files up to "
            f"{MAX_DOCUMENT_BYTES / 1e6:.0f} MB."
        )
    return MEDIA_TYPES[extension]


def convert(name: str, data: bytes) -> Converted:
    """The document as Markdown and chunks; UnsupportedDocument when it holds no readable text."""
    media_type = check_upload(name, data)
    markdown = to_markdown(name, data)
    if not markdown.replace(PAGE_BREAK, "").strip():
        raise UnsupportedDocument(
            f"No text could be read from '{name}': it may be damaged, or a scan without text."
        )
    return Converted(name, media_type, len(data), markdown, chunk_markdown(markdown))


def pasted(name: str, text: str) -> Converted:
    """Text pasted on the page, kept as the Markdown it is."""
    name = name.strip() or "pasted text"
    if not text.strip():
        raise InvalidInput("The pasted text is empty.")
    data = text.encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        check_upload(name + ".txt", data)
    return Converted(name, "text/markdown", len(data), text, chunk_markdown(text))


def to_markdown(name: str, data: bytes) -> str:
    extension = extension_of(name)
    if extension in PLAIN:
        return decoded(name, data)
    try:
        result = converter_for(extension).convert(io.BytesIO(data), stream_info(extension))
    except Exception as error:  # the converters raise many kinds for a damaged file
        raise UnsupportedDocument(
            f"'{name}' could not be read as {extension.lstrip('.').upper()}: {first_line(error)}"
        ) from error
    return result.markdown or ""


def decoded(name: str, data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise UnsupportedDocument(f"'{name}' is not text in a known encoding (UTF-8, UTF-16, GB18030).")


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


_converters: dict[str, Any] = {}
_converters_lock = threading.Lock()


def converter_for(extension: str) -> Any:
    """markitdown's converter for exactly this type, made once. Called directly rather than
    through MarkItDown.convert, which falls back to reading a damaged PDF as plain text."""
    with _converters_lock:
        if extension not in _converters:
            from markitdown.converters import DocxConverter, HtmlConverter, PdfConverter

            kinds = {".pdf": PdfConverter, ".docx": DocxConverter}
            _converters[extension] = kinds.get(extension, HtmlConverter)()
        return _converters[extension]


def stream_info(extension: str) -> Any:
    from markitdown import StreamInfo

    return StreamInfo(extension=extension, mimetype=MEDIA_TYPES[extension])


# --- chunks ---


def estimated_tokens(text: str) -> int:
    """About a model's token count in any script: a CJK character, a word or a sign each."""
    return len(TOKEN_ESTIMATE.findall(text))


_chunker: Any = None


def chunker() -> Any:
    global _chunker
    if _chunker is None:
        import semchunk

        _chunker = semchunk.chunkerify(estimated_tokens, CHUNK_TOKENS)
    return _chunker


def sections(markdown: str) -> list[tuple[str | None, int, str]]:
    """(heading, start, text) of each stretch between headings and page breaks: a chunk never
    straddles two sections or two pages, so it has one heading and one page."""
    cuts: list[tuple[int, str | None]] = [(0, None)]
    cuts += [(m.start(), m.group(2).strip()) for m in HEADING.finditer(markdown)]
    cuts += [(m.end(), "") for m in re.finditer(PAGE_BREAK, markdown)]  # "": same heading
    cuts.sort(key=lambda cut: cut[0])
    out = []
    heading: str | None = None
    for index, (start, title) in enumerate(cuts):
        heading = heading if title == "" else title
        end = cuts[index + 1][0] if index + 1 < len(cuts) else len(markdown)
        text = markdown[start:end]
        if text.strip():
            out.append((heading, start, text))
    return out


def chunk_markdown(markdown: str) -> list[Chunk]:
    """Overlapping chunks that never straddle two headings; each knows its page (PDF)."""
    page_starts = [m.end() for m in re.finditer(PAGE_BREAK, markdown)]
    chunks: list[Chunk] = []
    for heading, start, text in sections(markdown):
        pieces, offsets = chunker()(text, offsets=True, overlap=OVERLAP)
        for piece, (begin, _end) in zip(pieces, offsets, strict=True):
            clean = piece.replace(PAGE_BREAK, "\n").strip()
            if not clean:
                continue
            at = start + begin
            page = 1 + sum(1 for p in page_starts if p <= at) if page_starts else None
            chunks.append(Chunk(len(chunks), clean, heading, page, at))
    return chunks


# --- keyword terms ---


def terms(text: str) -> Counter[str]:
    """Lowercased words, and every pair of adjacent CJK characters (a lone one stands alone)."""
    counts: Counter[str] = Counter(word.lower() for word in WORD.findall(text))
    for run in CJK_RUN.findall(text):
        if len(run) == 1:
            counts[run] += 1
        else:
            counts.update(run[i : i + 2] for i in range(len(run) - 1))
    return counts
