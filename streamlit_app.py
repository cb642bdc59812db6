"""The dashboard's entry: the shared sidebar and the navigation over pages/."""

import streamlit as st

import ui
from chatcore.errors import DatabaseLocked, DatabaseUnreadable
from chatcore.logs import begin_request
from chatcore.warmup import first_page_drawn
from ui import recovery
from ui.i18n import _
from ui.page_icon import PAGE_ICON

st.set_page_config(page_title=_("Ollama Chat Dashboard"), page_icon=PAGE_ICON, layout="wide")
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

chat = st.Page("pages/chat.py", title=_("Chat"), icon=":material/chat:", default=True)
pages = st.navigation(
    [
        chat,
        st.Page("pages/compare.py", title=_("Compare"), icon=":material/view_column:"),
        st.Page("pages/suites.py", title=_("Suites"), icon=":material/table_view:"),
        st.Page("pages/history.py", title=_("History"), icon=":material/history:"),
        st.Page("pages/stats.py", title=_("Stats"), icon=":material/monitoring:"),
        st.Page("pages/models.py", title=_("Models"), icon=":material/deployed_code:"),
        st.Page("pages/knowledge.py", title=_("Knowledge"), icon=":material/library_books:"),
    ]
)
ui.follow_the_choice(pages, chat)
ui.sidebar()
try:
    pages.run()
finally:
    first_page_drawn()  # the start-up's background work may begin (server.py)
