"""The pronunciation dictionary as a text preprocessor (plugin and preprocessor
``pronunciations``): each term of ``<data_dir>/pronunciations.json`` that applies to the
request's voice and language is replaced by its spoken form.

Runs at order 45: after role tagging (20), speaker tags (30) and the nonverbal check
(40), before normalization (50), so a term written with digits or symbols ("R2-D2",
"C++") is matched as written and a spoken form with numbers is then normalized. The
entries are managed through ``/pronunciations`` (``http/routes/pronunciations.py``).
"""

from __future__ import annotations

import msgspec

from ttsframe import PluginContext, PronunciationStore, TextContext, TextPreprocessor, hookimpl


class PronunciationsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.pronunciations]``."""

    order: int = 45


class DictionaryPreprocessor(TextPreprocessor):
    name = "pronunciations"

    def __init__(self, store: PronunciationStore, order: int = 45) -> None:
        self.store = store
        self.order = order

    def process(self, text: str, ctx: TextContext) -> str:
        return self.store.apply(text, voice_id=ctx.voice.voice_id, language=ctx.language)


def make_preprocessor(ctx: PluginContext) -> DictionaryPreprocessor:
    config: PronunciationsConfig = ctx.config
    return DictionaryPreprocessor(PronunciationStore(ctx.data_dir), config.order)


@hookimpl
def register_preprocessors(register):
    register("pronunciations", make_preprocessor, config=PronunciationsConfig)
