"""Messages of a dialogue: a stored one with its caption, a reply as it streams, a refusal."""

from __future__ import annotations

from collections.abc import Sequence

import pandas  # noqa: F401  st.write_stream imports it on first use: not during the first reply
import streamlit as st

from chatcore.chat import ReplyStream
from chatcore.errors import DashboardError
from chatcore.types import Citation, StoredMessage
from ui.components import show_error
from ui.formatting import reply_caption
from ui.knowledge import show_citations


def show_message(message: StoredMessage, citations: Sequence[Citation] = ()) -> None:
    with st.chat_message(message.role):
        st.markdown(message.content)
        if message.run is not None:
            run = message.run
            if run.status == "error":
                st.error(run.error or "The reply failed.")
            st.caption(reply_caption(run.model, run.metrics, run.ttft_ms, run.status))
            show_citations(citations)


def stream_reply(stream: ReplyStream) -> None:
    """Show a reply as it streams; a stop or rerun closes the stream, which stores it as stopped."""
    with st.chat_message("assistant"):
        try:
            st.write_stream(stream)
        finally:
            stream.close()
        reply = stream.reply
        if reply.status == "error":
            st.error(reply.error or "The reply failed.")
        st.caption(reply_caption(reply.model, reply.metrics, reply.ttft_ms, reply.status))
        show_citations(reply.citations)


def show_refusal(error: DashboardError, unsent: str | None = None) -> None:
    """An error raised before anything was stored: say it, and keep the user's text visible."""
    show_error(error)
    if unsent:
        st.caption("Your message was not sent; here it is to copy:")
        st.code(unsent, language=None)
