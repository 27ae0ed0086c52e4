"""Text normalization: numbers, money, dates, units, abbreviations, addresses and symbols
written out as words before a backend reads them (plugin and preprocessor ``normalize``).

On by default; ``[plugins.normalize] enabled = false`` turns it off for the deployment and
a request's ``"normalize": false`` for one request (``true`` turns it on for one request
when the deployment has it off). Runs after the nonverbal check (order 50), so a number
written in parentheses never looks like a nonverbal tag to it; speaker tags and
nonverbals are left exactly as written.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ttsframe import PluginContext, TextContext, TextPreprocessor, hookimpl
from ttsframe.plugins.normalize.rules import language_of, normalize_text


class NormalizeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.normalize]``."""

    # Normalize requests that do not say (a request's "normalize" field wins).
    enabled: bool = True
    # The language of a request that names none (num2words' codes: en, de, fr, es, ...).
    language: str = "en"
    # How "03/04/2025" reads: month first ("mdy", US) or day first ("dmy").
    date_order: Literal["mdy", "dmy"] = "mdy"
    order: int = 50


class TextNormalizer(TextPreprocessor):
    name = "normalize"
    request_option = "normalize"

    def __init__(self, config: NormalizeConfig | None = None) -> None:
        self.config = config or NormalizeConfig()
        self.order = self.config.order

    def process(self, text: str, ctx: TextContext) -> str:
        wanted = self.config.enabled if ctx.normalize is None else ctx.normalize
        if not wanted:
            return text
        lang = language_of(ctx.language, self.config.language)
        if lang is None:
            ctx.warnings.append(
                f"text normalization has no rules for language '{ctx.language}'; numbers "
                "and symbols were left as written")
            return text
        return normalize_text(text, lang, self.config.date_order)


def make_normalizer(ctx: PluginContext) -> TextNormalizer:
    return TextNormalizer(ctx.config)


@hookimpl
def register_preprocessors(register):
    register("normalize", make_normalizer, config=NormalizeConfig)
