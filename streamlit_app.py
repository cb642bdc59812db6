"""The dashboard's entry: the shared sidebar and the navigation over pages/."""

import streamlit as st

import ui
from chatcore.errors import DatabaseLocked

st.set_page_config(page_title="Ollama Chat Dashboard", page_icon="💬", layout="wide")

try:
    ui.services()
except DatabaseLocked as error:
    st.error(str(error), icon="🔒")
    st.stop()

pages = st.navigation(
    [
        st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/view_column:"),
        st.Page("pages/suites.py", title="Suites", icon=":material/table_view:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/stats.py", title="Stats", icon=":material/monitoring:"),
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:"),
    ]
)
ui.sidebar()
pages.run()
