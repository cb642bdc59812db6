"""The Streamlit layer the pages stand on. Pages `import ui` for what every screen shares and
take the rest from its modules: components, messages, formatting, charts."""

from ui.session import (
    current_choice,
    current_conversation_id,
    model_listing,
    models_changed,
    open_conversation,
    services,
    show_conversation_in_address,
    use_in_sidebar,
)
from ui.sidebar import follow_the_choice, sidebar

__all__ = [
    "current_choice",
    "current_conversation_id",
    "follow_the_choice",
    "model_listing",
    "models_changed",
    "open_conversation",
    "services",
    "show_conversation_in_address",
    "sidebar",
    "use_in_sidebar",
]
