"""XTTS API server compatibility routes (plugin ``xtts_api``)."""

from __future__ import annotations

from ttsframe import hookimpl
from ttsframe_xtts_api.routes import ROUTES, XttsApiConfig

__all__ = ["ROUTES", "XttsApiConfig"]


@hookimpl
def register_routes(register):
    for handler in ROUTES:
        register(handler, config=XttsApiConfig)
