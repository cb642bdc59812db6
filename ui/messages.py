"""Messages of a dialogue: a stored one with its caption, a reply as it streams, a refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pandas  # noqa: F401  st.write_stream imports it on first use: not during the first reply
import streamlit as st

from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError
from chatcore.types import StoredMessage
from ui.components import show_error
from ui.formatting import reply_caption, waiting_status, with_log_reference


def show_message(message: StoredMessage) -> None:
    with st.chat_message(message.role):
        st.markdown(message.content)
        if message.run is not None:
            run = message.run
            if run.status == "error":
                st.error(
                    with_log_reference(run.error or "The reply failed.", run.request_id, run.id)
                )
            st.caption(
                reply_caption(
                    run.model, run.metrics, run.ttft_ms, run.status, run.attempts, run.host
                )
            )


def stream_reply(stream: ReplyStream) -> None:
    """Show a reply as it streams; a stop or rerun closes the stream, which stores it as stopped."""
    with st.chat_message("assistant"):
        try:
            st.write_stream(text_shown_while_waiting(stream))
        finally:
            stream.close()
        reply = stream.reply
        if reply.status == "error":
            message = reply.error or "The reply failed."
            st.error(with_log_reference(message, reply.request_id, reply.run_id))
        st.caption(
            reply_caption(
                reply.model, reply.metrics, reply.ttft_ms, reply.status, reply.attempts, reply.host
            )
        )


def text_shown_while_waiting(stream: ReplyStream) -> Iterator[str]:
    """The reply's text; while it waits its turn at a busy model, a line saying so. Drawing that
    line is what lets a stop end the wait at once (Streamlit stops a run when it draws)."""
    status = st.empty()
    waiting = False
    for piece in stream:
        if piece:
            if waiting:
                status.empty()
                waiting = False
            yield piece
        else:
            waiting = True
            status.caption(waiting_status(stream.waiting_ahead))


def show_refusal(error: DashboardError, unsent: str | None = None) -> None:
    """An error raised before anything was stored: say it, and keep the user's text visible."""
    show_error(error)
    if unsent:
        st.caption("Your message was not sent; here it is to copy:")
        st.code(unsent, language=None)
