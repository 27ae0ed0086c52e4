"""Chat-message clean-up as a ttsframe text preprocessor (plugin and preprocessor
``chattext``)."""

from __future__ import annotations

from ttsframe import hookimpl
from ttsframe_chattext.cleaner import ChatText, ChatTextConfig

__all__ = ["ChatText", "ChatTextConfig"]


@hookimpl
def register_preprocessors(register):
    register("chattext", lambda ctx: ChatText(ctx.config), config=ChatTextConfig)
