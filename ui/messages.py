"""Messages of a dialogue: a stored one with its caption, a reply as it streams (its reasoning in
a Thinking block above the answer), a refusal. Model and user text goes through safe_markdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from chatcore.chat import Reply, ReplyStream
from chatcore.errors import DashboardError
from chatcore.images import ACCEPTED_TYPES
from chatcore.types import Citation, StoredMessage, Thinking
from ui.components import finish_after_a_stop, show_error
from ui.formatting import reply_caption, thinking_label, waiting_status, with_log_reference
from ui.i18n import _
from ui.knowledge import show_citations
from ui.safe_markdown import safe_markdown
from ui.session import model_abilities, services

THUMBNAIL_PX = 240
STOP_KEY = "stop-reply"
# How long the first text has to reach the browser and be painted, alone, before what a send
# put off (the old dialogue, pages/chat.py) is drawn; well within the half second before
# Streamlit fades what a run has not redrawn yet.
FIRST_PAINT_SECONDS = 0.1


def show_message(
    message: StoredMessage,
    citations: Sequence[Citation] = (),
    tools: Callable[[StoredMessage], None] | None = None,
) -> None:
    """A stored message; `tools` draws what acts on it (ui/branches.py) at its foot."""
    with st.chat_message(message.role):
        if message.thinking:
            run = message.run
            seconds = run.metrics.thinking_ms / 1000 if run and run.metrics.thinking_ms else None
            with st.expander(thinking_label(seconds), expanded=False, icon=":material/psychology:"):
                safe_markdown(message.thinking)
        safe_markdown(message.content, hard_breaks=message.role == "user")
        if message.images:
            show_images(message.images)
        if message.run is not None:
            run = message.run
            with st.container():  # one place for the error and the caption, as while streaming
                if run.status == "error":
                    st.error(
                        with_log_reference(
                            run.error or _("The reply failed."), run.request_id, run.id
                        )
                    )
                st.caption(
                    reply_caption(
                        run.model, run.metrics, run.ttft_ms, run.status, run.attempts, run.host
                    )
                )
            show_citations(citations)
        if tools is not None:
            tools(message)


def show_images(hashes: Iterable[str]) -> None:
    """The images the user attached: stored in the app, so shown as images (not defused)."""
    stored = services().chat.images(list(hashes))
    pictures = [stored[h].data for h in hashes if h in stored]
    if pictures:
        st.image(pictures, width=THUMBNAIL_PX)


def chat_prompt(model: str | None, disabled: bool) -> tuple[str | None, list[bytes]]:
    """The chat input: text, plus image files when the model can see them (PNG, JPEG, WebP,
    GIF). Returns the text sent (None when nothing was) and the images' bytes."""
    vision = model is not None and model_abilities(model).vision
    sent = st.chat_input(
        _("Message (attach images with the clip)") if vision else _("Message"),
        key="chat_prompt",
        submit_mode="stop",
        disabled=disabled,
        accept_file="multiple" if vision else False,
        file_type=list(ACCEPTED_TYPES) if vision else None,
    )
    if sent is None:
        return None, []
    if isinstance(sent, str):
        return sent, []
    text = sent.text or (_("What is in this image?") if sent.files else "")
    return text or None, [file.getvalue() for file in sent.files]


def show_user_turn(text: str, images: list[bytes] | None = None) -> None:
    with st.chat_message("user"):
        safe_markdown(text, hard_breaks=True)
        if images:
            st.image(images, width=THUMBNAIL_PX)


class LiveReply:
    """A reply drawn as it streams: reasoning in a status block that is open while the model
    thinks and collapses, with how long it thought, once the answer starts."""

    def __init__(self, place: DeltaGenerator, fresh_place: bool = False) -> None:
        """Drawn in `place` (the reply's chat message). Where an earlier run drew (a regenerated
        reply), its three slots come at once and clear what was there; in a `fresh_place`, each
        comes when first needed, so the reply's first element is its first text."""
        self._place = place
        self._waiting_slot = None if fresh_place else self._new_slot()
        self._waiting = False
        self._thinking_slot = None if fresh_place else self._new_slot()
        self._answer_slot = None if fresh_place else self._new_slot()
        self._status: object = None
        self._thoughts: list[str] = []
        self._answer: list[str] = []
        self._thinking_since: float | None = None
        self._thought_for: float | None = None

    def _new_slot(self) -> DeltaGenerator:
        return self._place.empty()

    def waiting(self, ahead: int | None) -> None:
        if self._waiting_slot is None:
            self._waiting_slot = self._new_slot()
        self._waiting_slot.caption(waiting_status(ahead))
        self._waiting = True

    def add(self, piece: str) -> None:
        if self._waiting:
            assert self._waiting_slot is not None
            self._waiting_slot.empty()
            self._waiting = False
        if piece.__class__ is Thinking:
            self._add_thinking(piece)
        else:
            if self._answer == [] and self._status is not None:
                self._close_thinking()
            if self._answer_slot is None:
                self._answer_slot = self._new_slot()
            self._answer.append(piece)
            safe_markdown("".join(self._answer), self._answer_slot)

    def _add_thinking(self, piece: str) -> None:
        if self._status is None:
            self._thinking_since = time.monotonic()
            if self._thinking_slot is None:
                self._thinking_slot = self._new_slot()
            self._status = self._thinking_slot.status(
                thinking_label(None, live=True), expanded=True, state="running"
            )
            with self._status:  # type: ignore[attr-defined]
                self._thinking_text = st.empty()
        self._thoughts.append(piece)
        safe_markdown("".join(self._thoughts), self._thinking_text)

    def _close_thinking(self) -> None:
        assert self._thinking_since is not None
        self._thought_for = time.monotonic() - self._thinking_since
        self._status.update(  # type: ignore[attr-defined]
            label=thinking_label(self._thought_for), state="complete", expanded=False
        )

    def finish(self, thinking_ms: float | None) -> None:
        if self._status is not None:
            seconds = thinking_ms / 1000 if thinking_ms is not None else self._thought_for
            self._status.update(  # type: ignore[attr-defined]
                label=thinking_label(seconds), state="complete", expanded=False
            )


def stream_reply(
    stream: ReplyStream,
    stop_button: bool = False,
    after_first_piece: Callable[[], None] | None = None,
    fresh_place: bool = False,
) -> None:
    """Show a reply as it streams; a stop or rerun closes the stream, which stores it as stopped.

    What an earlier run drew in the same places (a caption, the Regenerate button) is cleared
    before the first token. `stop_button` draws a Stop button under the reply, for a stream the
    chat input's own stop button does not cover (Regenerate). `after_first_piece` runs once the
    first piece (or the queue's line) is on screen: work the user need not wait for.
    `fresh_place`: nothing was drawn where the reply goes (a new message's), so nothing is
    cleared and its first text is the first thing drawn in it."""
    finish_after_a_stop(stream)
    message = st.chat_message("assistant")
    live = LiveReply(message, fresh_place)
    foot = None if fresh_place else message.empty()
    below = st.empty() if stop_button or not fresh_place else None
    if stop_button and below is not None:
        below.button(_("Stop"), key=STOP_KEY, icon=":material/stop_circle:", type="primary")
    try:
        for piece in stream:
            if piece:
                live.add(piece)
            else:  # queued at a busy model: drawing the line lets a stop end the wait
                live.waiting(stream.waiting_ahead)
            if after_first_piece is not None:
                # The browser applies what arrives together before it paints: a pause lets the
                # first text be painted before the many elements drawn after it.
                time.sleep(FIRST_PAINT_SECONDS)
                after_first_piece()
                after_first_piece = None
    finally:
        stream.close()
    if after_first_piece is not None:  # a reply that ended before any piece
        after_first_piece()
    if below is not None:
        below.empty()
    live.finish(stream.reply.metrics.thinking_ms)
    with foot.container() if foot is not None else message.container():
        reply_outcome(stream.reply)
        show_citations(stream.reply.citations)


def reply_outcome(reply: Reply) -> None:
    if reply.status == "error":
        message = reply.error or _("The reply failed.")
        st.error(with_log_reference(message, reply.request_id, reply.run_id))
    st.caption(
        reply_caption(
            reply.model, reply.metrics, reply.ttft_ms, reply.status, reply.attempts, reply.host
        )
    )


def show_refusal(error: DashboardError, unsent: str | None = None) -> None:
    """An error raised before anything was stored: say it, and keep the user's text visible."""
    show_error(error)
    if unsent:
        st.caption(_("Your message was not sent; here it is to copy:"))
        st.code(unsent, language=None)
