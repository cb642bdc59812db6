"""What a send draws after its reply's first text: the user waits for that text, not the rest.

Each element a run sends is a render in the browser, in order, so everything drawn before the
reply's first text delays it. On a send, the sidebar (some thirty widgets and the conversation
list) and the stored dialogue are what the last run drew: the browser keeps showing them until
they are drawn again, so they can come after the first text at no cost to what is seen.

The page's app (streamlit_app.py) puts the sidebar off with `draw_later`; the Chat page calls
`draw_what_waited` once the first piece is on screen (or at once, for a model slow to start),
and the app calls it again after the page, for a run that never got that far (a refused send).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

WAITING_KEY = "drawn-after-the-first-text"
PROMPT_KEY = "chat_prompt"  # the Chat page's chat input (ui.messages.chat_prompt)


def a_message_is_being_sent() -> bool:
    """Whether this run carries a message typed into the Chat page's input, for a chosen model
    (set by the last run: the input is disabled without one)."""
    state = st.session_state
    return bool(state.get(PROMPT_KEY)) and state.get("model") is not None


def draw_later(draw: Callable[[], None]) -> None:
    """Put `draw` off until this run's reply shows its first text."""
    st.session_state.setdefault(WAITING_KEY, []).append(draw)


def draw_what_waited() -> None:
    """Draw what was put off, once; a no-op when nothing waits."""
    waiting: list[Callable[[], None]] = st.session_state.pop(WAITING_KEY, [])
    for draw in waiting:
        draw()


def forget_what_waited() -> None:
    """At a run's start: what an interrupted run put off is not this run's to draw."""
    st.session_state.pop(WAITING_KEY, None)
