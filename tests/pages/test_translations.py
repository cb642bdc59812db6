"""The message catalogs: every string the code marks for translation is in the Chinese catalog,
translated, not fuzzy, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CHINESE = ROOT / "ui" / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
METHODS = [("streamlit_app.py", "python"), ("pages/**.py", "python"), ("ui/**.py", "python")]
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def marked_in_code() -> set[str]:
    found: set[str] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map=METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def chinese_catalog():  # type: ignore[no-untyped-def]
    with CHINESE.open("rb") as file:
        return read_po(file, locale="zh_CN")


def test_every_marked_string_is_in_the_chinese_catalog() -> None:
    catalog_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in chinese_catalog() if m.id}
    missing = sorted(marked_in_code() - catalog_ids)
    assert not missing, f"run `make extract-messages` and translate: {missing[:10]}"
    assert len(catalog_ids) > 300  # the whole interface, not a sample


def test_no_entry_is_untranslated_or_fuzzy() -> None:
    catalog = chinese_catalog()
    untranslated = [m.id for m in catalog if m.id and not all(_forms(m.string))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated and not fuzzy, (untranslated[:5], fuzzy[:5])


def test_translations_keep_their_placeholders() -> None:
    for message in chinese_catalog():
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        for form in _forms(message.string):
            assert sorted(PLACEHOLDER.findall(form)) == sorted(PLACEHOLDER.findall(source)), source


def test_the_glossary_terms_are_used_the_same_way_everywhere() -> None:
    """One word per concept (docs/glossary.zh-CN.md): "Model" is always 模型, never 型号."""
    glossary = (ROOT / "docs" / "glossary.zh-CN.md").read_text()
    pairs = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", glossary, re.MULTILINE)
    terms = {english.lower(): chinese for english, chinese in pairs[1:]}  # after the header
    assert {"model", "temperature", "conversation", "history", "stats"} <= set(terms)
    for message in chinese_catalog():
        if isinstance(message.id, str) and message.id.lower() in terms:
            assert message.string == terms[message.id.lower()], message.id


def _forms(string: str | tuple[str, ...]) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else tuple(string)
