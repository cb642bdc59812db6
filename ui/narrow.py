"""Choosing from the sidebar on a phone: the sidebar gets out of the way of what was chosen.

On a narrow screen Streamlit's sidebar covers the page. Streamlit 1.67 closes it after a tap on
one of its own page links only when the browser's user agent says "mobile", and never after a
button in the sidebar (our conversations, New chat). So the run that follows a choice (a page
changed, a conversation opened) ends with a short script, ours and constant (no user text in it),
that presses the sidebar's own collapse button when the window is as narrow as a phone's. It runs
once per choice: moving a slider in the sidebar never closes it.
"""

from __future__ import annotations

import streamlit as st

CHOSEN_KEY = "sidebar-choice-made"  # a conversation was chosen in the sidebar
SEEN_PAGE_KEY = "sidebar-seen-page"  # the page the last run showed
COUNT_KEY = "sidebar-closings"  # makes each script a new element, so each one runs
# Streamlit's own breakpoint (theme.breakpoints.md): below it the sidebar overlays the page.
PHONE_WIDTH_PX = 768

CLOSE_SCRIPT = """
<script>
// closing the sidebar after choice {count}
(() => {{
  if (window.innerWidth > {width}) return;
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  if (!sidebar || sidebar.getAttribute("data-collapsed") === "true") return;
  document.querySelector('[data-testid="stSidebarCollapseButton"] button')?.click();
}})();
</script>
"""


def conversation_chosen() -> None:
    """Call from the sidebar's buttons' callbacks."""
    st.session_state[CHOSEN_KEY] = True


def page_shown(url_path: str) -> None:
    """Call every run with the page about to run: a new one counts as a choice."""
    seen = st.session_state.get(SEEN_PAGE_KEY)
    st.session_state[SEEN_PAGE_KEY] = url_path
    if seen is not None and seen != url_path:
        st.session_state[CHOSEN_KEY] = True


def close_after_a_choice() -> None:
    """Draw the closing script in the sidebar once, on the run after a choice."""
    if not st.session_state.pop(CHOSEN_KEY, False):
        return
    count = st.session_state[COUNT_KEY] = st.session_state.get(COUNT_KEY, 0) + 1
    st.html(CLOSE_SCRIPT.format(count=count, width=PHONE_WIDTH_PX), unsafe_allow_javascript=True)
