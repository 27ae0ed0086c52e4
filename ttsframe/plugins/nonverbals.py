"""Nonverbal tags: ``(laughs)``, ``(sighs)``, ... checked against what Dia knows.

Dia performs a fixed set of parenthesised nonverbals; anything else in parentheses may be
read aloud, mumbled or turned into an odd sound. What counts as a tag: one to three
lowercase words (letters, optionally joined by ``-`` or ``'``) in parentheses, at most
30 characters, e.g. ``(laughs)``, ``(clears throat)``. Parentheses holding anything else
(capitals, digits, punctuation, longer phrases) are ordinary prose and left alone, so
"(see the docs, section 2)" or "(NASA)" are never flagged.

A known tag written in capitals (``(Laughs)``) is rewritten in lowercase, with a warning.
An unknown tag is reported in ``X-TTSFrame-Warnings`` and the log, or rejected with 400
when ``generation.unknown_nonverbals = "reject"``. ``[plugins.nonverbals] extra_tags``
adds tags a backend's model knows beyond Dia's.

Only backends that take Dia-style scripts (``Capabilities.speaker_tags``) are checked.
"""

from __future__ import annotations

import re

import msgspec

from ttsframe import InvalidInput, PluginContext, TextContext, TextPreprocessor, hookimpl

# The API guide's list plus the nonverbals Dia's documentation names.
KNOWN_NONVERBALS: frozenset[str] = frozenset({
    "laughs", "clears throat", "sighs", "gasps", "coughs", "singing", "sings", "mumbles",
    "beep", "groans", "sniffs", "claps", "screams", "inhales", "exhales", "applause",
    "burps", "humming", "sneezes", "chuckle", "whistles", "whispers", "shouts",
})

_WORD = r"[A-Za-z]+(?:['-][A-Za-z]+)*"
TAG_CANDIDATE = re.compile(rf"\(\s*({_WORD}(?: {_WORD}){{0,2}})\s*\)")
MAX_TAG_CHARS = 30


class NonverbalsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # More tags to accept, written without parentheses: ["purrs", "takes a breath"].
    extra_tags: list[str] = []


class NonverbalChecker(TextPreprocessor):
    name = "nonverbals"
    order = 40

    def __init__(self, mode: str = "warn", extra: list[str] | tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.known = KNOWN_NONVERBALS | {t.strip().strip("()").strip().lower() for t in extra}

    def process(self, text: str, ctx: TextContext) -> str:
        if not ctx.speaker_tags:
            return text
        unknown: list[str] = []
        recased: list[str] = []

        def check(match: re.Match[str]) -> str:
            words = match.group(1)
            if len(words) > MAX_TAG_CHARS:
                return match.group(0)
            if words in self.known:
                return f"({words})"
            if words.lower() in self.known:
                recased.append(match.group(0))
                return f"({words.lower()})"
            if words == words.lower():
                unknown.append(f"({words})")
            return match.group(0)

        text = TAG_CANDIDATE.sub(check, text)
        for tag in dict.fromkeys(recased):
            ctx.warnings.append(f"nonverbal {tag} written as {tag.lower()}")
        if unknown:
            tags = ", ".join(dict.fromkeys(unknown))
            if self.mode == "reject":
                raise InvalidInput(
                    f"unknown nonverbal tag(s) {tags}; backend '{ctx.backend}' knows "
                    f"{self.known_list()}. Remove or rephrase them, or set "
                    "generation.unknown_nonverbals = \"warn\" to let them through")
            ctx.warnings.append(f"unknown nonverbal tag(s) {tags} may be read aloud or "
                                f"ignored; known tags: {self.known_list()}")
        return text

    def known_list(self) -> str:
        return ", ".join(f"({t})" for t in sorted(self.known))


def make_checker(ctx: PluginContext) -> NonverbalChecker:
    config: NonverbalsConfig = ctx.config
    return NonverbalChecker(ctx.settings.generation.unknown_nonverbals, config.extra_tags)


@hookimpl
def register_preprocessors(register):
    register("nonverbals", make_checker, config=NonverbalsConfig)
