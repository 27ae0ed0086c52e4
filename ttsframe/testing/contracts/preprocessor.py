"""What every text preprocessor must do: return a string, leave ordinary text speakable,
report through ``ctx.warnings``, and give the same answer when run twice (the core may
process text that a client already cleaned).

    class TestMyPreprocessor(PreprocessorContract):
        samples = ["Text your preprocessor changes", ...]
        @pytest.fixture
        def preprocessor(self):
            return MyPreprocessor()

Set ``idempotent = False`` only if running twice must differ, and say why in your README.
"""

from __future__ import annotations

import pytest

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.preprocessor import TextContext, TextPreprocessor
from ttsframe.core.voices.voice import Voice

ORDINARY = [
    "Hello, this is a test message.",
    "Numbers like 42 and 3.14 stay put; so does punctuation!",
    "[S1] Tagged text. [S2] And a reply (laughs).",
    "Ünïcödé text: café, naïve, 東京.",
]


def contexts() -> list[TextContext]:
    voice = Voice(voice_id="alloy", seed=1)
    return [TextContext(role=role, voice=voice, backend="any", speaker_tags=tags)
            for role in (None, "user", "assistant") for tags in (True, False)]


class PreprocessorContract:
    """Subclass it, provide a ``preprocessor`` fixture and (ideally) ``samples``: texts
    your preprocessor acts on."""

    samples: list[str] = []
    idempotent = True

    @pytest.fixture
    def preprocessor(self) -> TextPreprocessor:
        pytest.fail(f"{type(self).__name__} must define a `preprocessor` fixture")

    def texts(self) -> list[str]:
        return [*ORDINARY, *self.samples]

    def test_name_and_order(self, preprocessor: TextPreprocessor):
        assert isinstance(preprocessor.name, str) and preprocessor.name
        assert isinstance(preprocessor.order, int)

    def test_returns_text_and_reports_warnings_as_strings(self, preprocessor):
        for ctx in contexts():
            for text in self.texts():
                try:
                    out = preprocessor.process(text, ctx)
                except InvalidInput:
                    continue  # refusing is allowed; it becomes a 400 naming the problem
                assert isinstance(out, str), f"{text!r} -> {out!r}"
            assert all(isinstance(w, str) and w for w in ctx.warnings)

    def test_ordinary_text_keeps_its_words(self, preprocessor):
        for ctx in contexts():
            out = preprocessor.process(ORDINARY[0], ctx)
            assert "this is a test message" in out, out

    def test_running_twice_changes_nothing_more(self, preprocessor):
        if not self.idempotent:
            pytest.skip("declared not idempotent")
        for ctx in contexts():
            for text in self.texts():
                try:
                    once = preprocessor.process(text, ctx)
                except InvalidInput:
                    continue
                twice = preprocessor.process(once, ctx)
                assert twice == once, f"{text!r}: {once!r} then {twice!r}"
