"""Search hits with the words searched for marked: Markdown bold around each match, every other
character escaped, so a snippet of model or user text can't format, link or embed anything."""

from __future__ import annotations

import re

# Everything Markdown (or Streamlit's additions: `:material/...:`, `:red[...]`, `$math$`) reads
# as syntax. CommonMark lets a backslash escape any ASCII punctuation.
SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&\"'=^/%@;,?])")


def escaped_markdown(text: str) -> str:
    """`text` shown literally by st.markdown (on one line: call it with flattened text)."""
    return SPECIAL.sub(r"\\\1", text)


def marked_snippet(snippet: str, searched: str) -> str:
    """`snippet` as safe Markdown with each case-insensitive match of `searched` in bold."""
    needle = " ".join(searched.split())
    flat = " ".join(snippet.split())
    if not needle:
        return escaped_markdown(flat)
    pieces, position = [], 0
    for match in re.finditer(re.escape(needle), flat, re.IGNORECASE):
        pieces.append(escaped_markdown(flat[position : match.start()]))
        pieces.append(f"**{escaped_markdown(match.group())}**")
        position = match.end()
    pieces.append(escaped_markdown(flat[position:]))
    return "".join(pieces)


def hit_markdown(about: str, snippet: str, searched: str) -> str:
    """A search hit's line about it (small and grey, as a caption) over its marked snippet, as
    one element: each element is one more message for the browser to take and draw."""
    return f":small[:gray[{escaped_markdown(about)}]]  \n{marked_snippet(snippet, searched)}"
