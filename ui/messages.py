"""Messages of a dialogue: a stored one with its caption, a reply as it streams, a refusal."""

from __future__ import annotations

import pandas  # noqa: F401  st.write_stream imports it on first use: not during the first reply
import streamlit as st

from chatcore.chat import Reply, ReplyStream
from chatcore.errors import DashboardError
from chatcore.types import StoredMessage
from ui.components import finish_after_a_stop, show_error
from ui.formatting import reply_caption

STOP_KEY = "stop-reply"


def show_message(message: StoredMessage) -> None:
    with st.chat_message(message.role):
        st.markdown(message.content)
        if message.run is not None:
            run = message.run
            with st.container():  # one place for the error and the caption, as while streaming
                if run.status == "error":
                    st.error(run.error or "The reply failed.")
                st.caption(reply_caption(run.model, run.metrics, run.ttft_ms, run.status))


def stream_reply(stream: ReplyStream, stop_button: bool = False) -> None:
    """Show a reply as it streams; a stop or rerun closes the stream, which stores it as stopped.

    What an earlier run drew in the same places (a caption, the Regenerate button) is cleared
    before the first token. `stop_button` draws a Stop button under the reply, for a stream the
    chat input's own stop button does not cover (Regenerate)."""
    finish_after_a_stop(stream)
    message = st.chat_message("assistant")
    text, foot = message.empty(), message.empty()
    below = st.empty()
    if stop_button:
        below.button("Stop", key=STOP_KEY, icon=":material/stop_circle:", type="primary")
    try:
        text.write_stream(stream)
    finally:
        stream.close()
    below.empty()
    with foot.container():
        reply_outcome(stream.reply)


def reply_outcome(reply: Reply) -> None:
    if reply.status == "error":
        st.error(reply.error or "The reply failed.")
    st.caption(reply_caption(reply.model, reply.metrics, reply.ttft_ms, reply.status))


def show_refusal(error: DashboardError, unsent: str | None = None) -> None:
    """An error raised before anything was stored: say it, and keep the user's text visible."""
    show_error(error)
    if unsent:
        st.caption("Your message was not sent; here it is to copy:")
        st.code(unsent, language=None)
