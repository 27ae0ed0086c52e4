"""AllTalk API compatibility routes (plugin ``alltalk_api``)."""

from __future__ import annotations

from ttsframe import hookimpl
from ttsframe_alltalk_api.routes import ROUTES, AllTalkApiConfig

__all__ = ["ROUTES", "AllTalkApiConfig"]


@hookimpl
def register_routes(register):
    for handler in ROUTES:
        register(handler, config=AllTalkApiConfig)
