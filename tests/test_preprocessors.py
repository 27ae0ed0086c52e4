"""Role tagging and speaker-tag normalisation."""

from __future__ import annotations

import pytest

from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces.preprocessor import TextContext
from ttsframe.core.voices.voice import Voice
from ttsframe.plugins.roles import RoleTagger
from ttsframe.plugins.speaker_tags import SpeakerTagNormaliser


def run(text: str, role=None, speaker="S1", tags=True, speakers=("S1", "S2")) -> str:
    ctx = TextContext(role=role, voice=Voice(voice_id="v", primary_speaker=speaker),
                      backend="dia", speaker_tags=tags, speakers=speakers)
    for pre in sorted([SpeakerTagNormaliser(), RoleTagger()], key=lambda p: p.order):
        text = pre.process(text, ctx)
    return text


@pytest.mark.parametrize(("role", "tag"), [("user", "[S1]"), ("assistant", "[S2]"),
                                           ("system", "[S2]")])
def test_roles_map_to_speakers(role, tag):
    assert run("Hello there.", role=role, speaker="S1" if tag == "[S2]" else "S2") == \
        f"{tag} Hello there."


def test_untagged_text_gets_the_voice_speaker():
    assert run("Hi.", speaker="S2") == "[S2] Hi."


def test_explicit_tags_win_over_role():
    assert run("[S2] Hi. [S1] Hello.", role="user") == "[S2] Hi. [S1] Hello."


def test_tags_are_normalised():
    assert run("[s1]  Hi.\n[ S2 ] Yo.") == "[S1] Hi. [S2] Yo."


def test_unknown_speaker_is_rejected():
    with pytest.raises(InvalidInput, match=r"unknown speaker tag \[S3\]"):
        run("[S3] who?")


def test_only_tags_is_rejected():
    with pytest.raises(InvalidInput, match="only speaker tags"):
        run("[S1] [S2]")


def test_backends_without_tags_get_plain_text():
    assert run("[S1] Hello [S2] there", role="user", tags=False) == "Hello there"


def test_roles_take_the_backends_own_speakers():
    """The user gets the backend's first speaker and the assistant its second; a backend
    with one speaker gives it to every role rather than refusing assistant text."""
    assert run("Hi.", role="assistant", speakers=("S1", "S2", "S3")) == "[S2] Hi."
    assert run("Hi.", role="user", speakers=("S1", "S2", "S3")) == "[S1] Hi."
    assert run("Hi.", role="assistant", speakers=("S1",)) == "[S1] Hi."
    assert run("Hi.", role="system", speakers=("S1",)) == "[S1] Hi."
