"""eSpeak NG as a ttsframe backend (plugin ``espeak``, backend ``espeak``)."""

from __future__ import annotations

from ttsframe import hookimpl
from ttsframe_espeak.backend import EspeakBackend, EspeakConfig, EspeakOptions

__all__ = ["EspeakBackend", "EspeakConfig", "EspeakOptions"]


@hookimpl
def register_backends(register):
    register("espeak", lambda ctx: EspeakBackend(ctx.config), config=EspeakConfig)
