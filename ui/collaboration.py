"""Models working together, put together on the Compare page as one entry beside single models.

The entry is named as a suite names it (`critique(A -> B -> C)`, `fusion(A + B -> S)`), so the
votes and the leaderboards rank it under that one name.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from chatcore.collaboration import CRITIQUE, FUSION, Collaboration
from ui.i18n import N_, _

BUILT_KEY = "compare_collaborations"  # the entries built in this session, offered as options
PATTERNS = {
    CRITIQUE: N_("Draft, critique, revise"),
    FUSION: N_("Fusion: several answer, one writes the final answer"),
}


def built() -> list[str]:
    """The collaborations put together so far, for the models picker's options."""
    return list(st.session_state.get(BUILT_KEY, []))


def builder(models: list[str], label: Callable[[str], str], picked_key: str, room: int) -> None:
    """An expander that puts a collaboration together from the available models and adds it to
    the picked entries (`picked_key`, the picker's key) while there is room."""
    with st.expander(_("Models working together, ranked as one entry"), icon=":material/group:"):
        if len(models) < 2:
            st.caption(_("Working together takes at least two models."))
            return
        pattern = st.radio(
            _("How"),
            list(PATTERNS),
            format_func=lambda pattern: _(PATTERNS[pattern]),
            horizontal=True,
            key="collab_pattern",
        )
        collaboration = critique_picker(models, label) if pattern == CRITIQUE else None
        if pattern == FUSION:
            collaboration = fusion_picker(models, label)
        picked = st.session_state.get(picked_key, [])
        full = len(picked) >= room
        st.button(
            _("Add to the comparison"),
            key="collab_add",
            disabled=collaboration is None or full,
            help=_("Four entries at most: remove one above first.") if full else None,
            on_click=add,
            args=(collaboration.name if collaboration else "", picked_key),
        )
        st.caption(
            _(
                "Each step is an ordinary reply, stored with its role; the column "
                "shows them one after the other, then the final answer, which is what "
                "you vote on."
            )
        )


# Stacked, not in st.columns: the round's answers are the page's only columns.


def critique_picker(models: list[str], label: Callable[[str], str]) -> Collaboration:
    first = st.selectbox(_("Drafts"), models, format_func=label, key="collab_drafter")
    second = st.selectbox(_("Critiques"), models, index=1, format_func=label, key="collab_critic")
    last = st.selectbox(_("Revises"), models, format_func=label, key="collab_reviser")
    return Collaboration(CRITIQUE, (first, second), last)


def fusion_picker(models: list[str], label: Callable[[str], str]) -> Collaboration | None:
    answering = st.multiselect(
        _("Answer at once (two or more)"),
        models,
        default=models[:2],
        format_func=label,
        key="collab_answering",
    )
    last = st.selectbox(
        _("Writes the final answer"), models, format_func=label, key="collab_synthesiser"
    )
    return Collaboration(FUSION, tuple(answering), last) if len(answering) >= 2 else None


def add(name: str, picked_key: str) -> None:
    if name and name not in built():
        st.session_state[BUILT_KEY] = [*built(), name]
    picked = list(st.session_state.get(picked_key, []))
    if name and name not in picked:
        st.session_state[picked_key] = [*picked, name]
