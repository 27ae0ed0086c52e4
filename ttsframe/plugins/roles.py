"""Role tagging: chat roles become Dia speaker tags (user -> [S1], assistant/system -> [S2]).

Only untagged text is tagged; text that already starts with a speaker tag is the
caller's explicit choice and is left alone.
"""

from __future__ import annotations

from ttsframe.core.hookspecs import hookimpl
from ttsframe.core.interfaces import TextContext, TextPreprocessor
from ttsframe.core.text import LEADING_TAG

ROLE_SPEAKERS = {"user": "S1", "assistant": "S2", "system": "S2"}


class RoleTagger(TextPreprocessor):
    name = "roles"
    order = 20

    def process(self, text: str, ctx: TextContext) -> str:
        if not ctx.speaker_tags or ctx.role is None or LEADING_TAG.match(text):
            return text
        return f"[{ROLE_SPEAKERS[ctx.role]}] {text}"


@hookimpl
def register_preprocessors(register):
    register("roles", lambda ctx: RoleTagger())
