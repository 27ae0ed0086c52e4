"""Nonverbal tag checks: what counts as a tag, warn vs reject, extra tags."""

from __future__ import annotations

import pytest

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.preprocessor import TextContext
from ttsframe.core.voices.voice import Voice
from ttsframe.plugins.nonverbals import KNOWN_NONVERBALS, NonverbalChecker
from ttsframe.testing.contracts.preprocessor import PreprocessorContract

GUIDE_TAGS = ["laughs", "coughs", "sighs", "gasps", "clears throat", "whispers", "shouts"]
DIA_TAGS = ["laughs", "clears throat", "sighs", "gasps", "coughs", "singing", "sings",
            "mumbles", "beep", "groans", "sniffs", "claps", "screams", "inhales", "exhales",
            "applause", "burps", "humming", "sneezes", "chuckle", "whistles"]


def check(text: str, mode: str = "warn", extra=(), tags: bool = True) -> tuple[str, list[str]]:
    ctx = TextContext(role=None, voice=Voice(voice_id="v"), backend="dia", speaker_tags=tags)
    return NonverbalChecker(mode, extra).process(text, ctx), ctx.warnings


def test_known_set_is_the_guides_plus_dias():
    assert set(GUIDE_TAGS) | set(DIA_TAGS) == KNOWN_NONVERBALS


@pytest.mark.parametrize("tag", sorted(KNOWN_NONVERBALS))
def test_every_known_tag_passes_silently_even_in_reject_mode(tag):
    text = f"[S1] Well ({tag}) then."
    assert check(text, "reject") == (text, [])


@pytest.mark.parametrize("prose", [
    "(see page 4)", "(NASA)", "(e.g. this one)", "(1990)", "(Note: check it)",
    "(a really quite long aside that goes on)", "(well, maybe)", "()", "( )",
    "(this is four words)", "(x" + "y" * 40 + ")",
])
def test_ordinary_parentheses_are_not_tags(prose):
    text = f"[S1] Something {prose} here."
    assert check(text, "reject") == (text, [])


def test_unknown_lowercase_tags_are_warned_once_each():
    text, warnings = check("[S1] Hi (giggles) and (giggles) (purrs loudly) (laughs).")
    assert text == "[S1] Hi (giggles) and (giggles) (purrs loudly) (laughs)."
    assert len(warnings) == 1
    assert warnings[0].startswith("unknown nonverbal tag(s) (giggles), (purrs loudly) may be")
    assert "(clears throat)" in warnings[0]


def test_reject_mode_is_a_clear_400():
    with pytest.raises(InvalidInput) as err:
        check("[S1] Hi (giggles).", "reject")
    message = err.value.message
    assert message.startswith("unknown nonverbal tag(s) (giggles); backend 'dia' knows ")
    assert 'generation.unknown_nonverbals = "warn"' in message


def test_capitalised_known_tags_are_lowercased_with_a_warning():
    text, warnings = check("[S1] (Laughs) so (CLEARS THROAT) ok ( sighs ).", "reject")
    assert text == "[S1] (laughs) so (clears throat) ok (sighs)."
    assert warnings == ["nonverbal (Laughs) written as (laughs)",
                        "nonverbal (CLEARS THROAT) written as (clears throat)"]


def test_extra_tags_from_config():
    assert check("[S1] (purrs)", "reject", extra=["purrs", "(takes a breath)"])[1] == []
    assert check("[S1] (takes a breath)", "reject", extra=["(takes a breath)"])[1] == []


def test_backends_without_dia_scripts_are_not_checked():
    assert check("Hi (giggles)", "reject", tags=False) == ("Hi (giggles)", [])


class TestNonverbalContract(PreprocessorContract):
    samples = ["(Laughs) capitalised", "(giggles) unknown", "[S1] (clears throat) known"]

    @pytest.fixture
    def preprocessor(self):
        return NonverbalChecker("warn")
