"""The dashboard's icon in the browser's tab (streamlit_app.py), warmed at start by server.py."""

PAGE_ICON = "💬"
