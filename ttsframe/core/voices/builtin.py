"""The built-in voices, as a read-only voice store: the API guide's six and OpenAI's
newer names (``LATER_BUILTINS``).

Each built-in voice has a fixed seed, so a voice sounds the same from one request to the
next instead of drawing a random speaker every call. Writable stores (see the filesystem
store) include these voices too and refuse to delete them. The ``builtin_voices`` plugin
registers this store; it is public as ``ttsframe.BuiltinVoiceStore``.
"""

from __future__ import annotations

from ttsframe.core.errors import NotFound
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.voices.voice import AudioPrompt, Voice

BUILTIN_VOICES: tuple[Voice, ...] = (
    Voice(voice_id="alloy", style="neutral", primary_speaker="S1", seed=1011, builtin=True),
    Voice(voice_id="echo", style="calm", primary_speaker="S1", seed=2027, builtin=True),
    Voice(voice_id="fable", style="expressive", primary_speaker="S2", seed=3041, builtin=True),
    Voice(voice_id="nova", style="bright", primary_speaker="S2", seed=4057, builtin=True),
    Voice(voice_id="onyx", style="deep", primary_speaker="S1", seed=5077, builtin=True),
    Voice(voice_id="shimmer", style="soft", primary_speaker="S2", seed=6089, builtin=True),
    Voice(voice_id="coral", style="warm", primary_speaker="S2", seed=7103, builtin=True),
    Voice(voice_id="ash", style="clear", primary_speaker="S1", seed=8111, builtin=True),
    Voice(voice_id="sage", style="wise", primary_speaker="S2", seed=9127, builtin=True),
    Voice(voice_id="ballad", style="melodic", primary_speaker="S1", seed=10139, builtin=True),
    Voice(voice_id="verse", style="lively", primary_speaker="S1", seed=11149, builtin=True),
    Voice(voice_id="marin", style="natural", primary_speaker="S2", seed=12157, builtin=True),
    Voice(voice_id="cedar", style="steady", primary_speaker="S1", seed=13163, builtin=True),
)

# OpenAI's voice names added after the first six. A data directory may already hold a
# custom voice under one of these ids (made when the name answered 404): a store keeps
# serving, changing and deleting that voice, and the built-in stands behind it.
LATER_BUILTINS = frozenset({"coral", "ash", "sage", "ballad", "verse", "marin", "cedar"})


def builtin_voice(voice_id: str) -> Voice | None:
    return next((v for v in BUILTIN_VOICES if v.voice_id == voice_id), None)


class BuiltinVoiceStore(VoiceStore):
    """Only the built-in voices; no prompts, no writes. A writable store that keeps the
    built-ins too reads them from the class: ``voices``, ``find`` and ``later`` (names
    a stored custom voice may hold, the built-in standing behind it)."""

    name = "builtin"
    voices: tuple[Voice, ...] = BUILTIN_VOICES
    later: frozenset[str] = LATER_BUILTINS

    @staticmethod
    def find(voice_id: str) -> Voice | None:
        """The built-in voice ``voice_id``, or None."""
        return builtin_voice(voice_id)

    def list_voices(self) -> list[Voice]:
        return list(BUILTIN_VOICES)

    def get_voice(self, voice_id: str) -> Voice:
        voice = builtin_voice(voice_id)
        if voice is None:
            raise NotFound(f"Voice '{voice_id}' not found")
        return voice

    def load_prompt(self, prompt_id: str) -> AudioPrompt:
        raise NotFound(f"Audio prompt '{prompt_id}' not found")
