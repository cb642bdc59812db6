"""The dashboard's core: settings, backends, the chat service, storage and statistics.

Nothing in this package imports Streamlit; the pages and the REST API both sit on top of it.
"""
