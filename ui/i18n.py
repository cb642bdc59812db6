"""The interface's language: gettext catalogs in ui/locales, chosen from the browser's language
or the sidebar's switch, and numbers, dates and durations written the way that language writes
them (Babel). Model names, model output and user text never pass through here.

Strings are marked with `_()` where they are shown; strings defined at import time (headers,
labels in tables) are marked with `N_()` and translated with `_()` where they are drawn.
"""

from __future__ import annotations

import gettext
from datetime import datetime, timedelta
from functools import cache
from io import BytesIO
from pathlib import Path

import streamlit as st
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_timedelta, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from streamlit.runtime.scriptrunner import get_script_run_ctx

LOCALE_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
ENGLISH = "en"
CHINESE = "zh_CN"
LANGUAGES = {ENGLISH: "English", CHINESE: "中文"}  # each in its own language, never translated
LANGUAGE_KEY = "language"  # session key and URL parameter (`?lang=zh_CN`)
URL_KEY = "lang"


def N_(message: str) -> str:
    """Marks a string for the catalogs without translating it yet (it is drawn later)."""
    return message


def _(message: str) -> str:
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations(current_language()).ngettext(singular, plural, count)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog (`make` compiles ui/locales at install); compiled here in memory
    when a checkout has only the .po files, so a bare `pytest` sees the same text."""
    if language == ENGLISH:
        return gettext.NullTranslations()
    compiled = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    source = compiled.with_suffix(".po")
    if compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime:
        with compiled.open("rb") as file:
            return gettext.GNUTranslations(file)
    with source.open("rb") as file:
        catalog = read_po(file, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


# --- which language: the sidebar's choice (kept in the URL), else the browser's ---


_last_used = [ENGLISH]


def current_language() -> str:
    if get_script_run_ctx() is None:
        # Outside a page's run: AppTest formats widget values in its own thread. Pages always
        # draw inside their run, so this never picks a language for a person.
        return _last_used[0]
    state = st.session_state
    in_url = st.query_params.get(URL_KEY)
    if in_url in LANGUAGES:
        state[LANGUAGE_KEY] = in_url
    elif LANGUAGE_KEY not in state:
        if (detected := browser_language()) is None:
            # A run told no browser language (AppTest's, say) draws in English but does not
            # decide: a later run that knows it does.
            _last_used[0] = ENGLISH
            return ENGLISH
        state[LANGUAGE_KEY] = detected
    _last_used[0] = state[LANGUAGE_KEY]
    return _last_used[0]


def browser_language() -> str | None:
    """Chinese for any zh-* browser (Simplified is the catalog there is), English otherwise;
    None when the run was not told the browser's language."""
    try:
        locale = st.context.locale
    except AttributeError:  # outside a browser session (AppTest without a locale)
        return None
    if locale is None:
        return None
    return CHINESE if locale.lower().startswith("zh") else ENGLISH


def choose_language(language: str) -> None:
    """The sidebar's switch: remembered in the session and named in the address, so a reload or
    a copied link opens in the same language."""
    st.session_state[LANGUAGE_KEY] = language
    keep_language_in_address()


def keep_language_in_address() -> None:
    """A page switch drops the address's parameters: a language other than the browser's is
    put back; the browser's own needs none."""
    language = st.session_state.get(LANGUAGE_KEY)
    if not language or st.query_params.get(URL_KEY) == language:
        return
    if language == (browser_language() or ENGLISH):  # a browser that did not say: English
        st.query_params.pop(URL_KEY, None)
    else:
        st.query_params[URL_KEY] = language


# --- numbers, dates and durations in the chosen language ---


def babel_locale() -> Locale:
    try:
        return Locale.parse(current_language())
    except (UnknownLocaleError, ValueError):
        return Locale.parse(ENGLISH)


def format_number(value: float, decimals: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    # Rounded as Python rounds the float (13.35 -> 13.3, like an f-string), then written out
    # with the language's separators.
    return format_decimal(round(float(value), decimals), format=pattern, locale=babel_locale())


def format_when(moment: datetime) -> str:
    return babel_datetime(moment, format="medium", locale=babel_locale())


def format_duration(seconds: float) -> str:
    """ "3 minutes" / "3分钟": for spans a person reads, not for measured milliseconds."""
    return format_timedelta(timedelta(seconds=seconds), locale=babel_locale())


def weekday_names() -> list[str]:
    """Monday to Sunday, abbreviated ("Mon" / "周一")."""
    names = get_day_names("abbreviated", locale=babel_locale())
    return [names[day] for day in range(7)]
