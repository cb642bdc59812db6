"""The dashboard's entry: the shared sidebar and the navigation over pages/."""

import streamlit as st

import ui
from chatcore.errors import DatabaseLocked, DatabaseUnreadable
from chatcore.logs import begin_request
from ui import recovery

st.set_page_config(page_title="Ollama Chat Dashboard", page_icon="💬", layout="wide")
begin_request()  # this run's id: shown with any error it meets, and on its lines in the log

try:
    ui.services()
except DatabaseLocked as error:
    st.error(str(error), icon="🔒")
    st.stop()
except DatabaseUnreadable as error:
    recovery.offer_newest_backup(error)
    st.stop()
recovery.show_restored_notice()

chat = st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True)
pages = st.navigation(
    [
        chat,
        st.Page("pages/compare.py", title="Compare", icon=":material/view_column:"),
        st.Page("pages/suites.py", title="Suites", icon=":material/table_view:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/stats.py", title="Stats", icon=":material/monitoring:"),
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:"),
        st.Page("pages/knowledge.py", title="Knowledge", icon=":material/library_books:"),
    ]
)
ui.follow_the_choice(pages, chat)
ui.sidebar()
pages.run()
