"""The built-in voices as a voice store (``[generation] voice_store = "builtin"``): the
store itself is ``ttsframe.BuiltinVoiceStore``, which writable stores use to include them."""

from __future__ import annotations

from ttsframe import BuiltinVoiceStore, hookimpl


@hookimpl
def register_voice_stores(register):
    register("builtin", lambda ctx: BuiltinVoiceStore())
