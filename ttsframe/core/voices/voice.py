"""Voices: the record, its audio prompt, and the rules every writable voice store
applies when a voice is created or updated.

The rules live in the core so that any store plugin gives the same answers:

* ids are safe file names (``core.ids``);
* a voice without an explicit seed gets a stable one derived from its id, so it sounds
  the same on every request (built-in voices have fixed seeds of their own);
* the transcript of a cloned voice always starts with a speaker tag, and that tag is the
  voice's ``primary_speaker``: Dia ties the prompt's voice to the transcript's speaker,
  so untagged request text must continue as that same speaker.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import numpy as np

from ttsframe.core.errors import InvalidInput
from ttsframe.core.ids import check_id
from ttsframe.core.text.tags import ANY_TAG, canonical_tags, speaker_of_leading_tag

# The speakers a voice's record may name (its ``primary_speaker`` and its transcript's
# tags): any speaker tag, S1 to S99. Which of them a backend speaks is its
# ``Capabilities.speakers``: a voice is checked against its backends when it is saved
# (the voice routes) and against the chosen backend on every request (``prepare``).
Speaker = Annotated[str, msgspec.Meta(
    pattern=r"^S[1-9][0-9]?$",
    description="A speaker tag's name, S1 to S99; which of them a model speaks is listed "
                "on /models (Dia: S1 and S2)")]
VOICE_SPEAKERS: tuple[str, ...] = tuple(f"S{n}" for n in range(1, 100))


class Voice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A named voice: optional audio prompt and transcript, speaker and fixed seed."""

    voice_id: str
    style: str = "neutral"
    primary_speaker: Speaker = "S1"
    audio_prompt: str | None = None
    audio_prompt_transcript: str | None = None
    seed: int | None = None
    builtin: bool = False
    backends: list[str] | None = None

    def __post_init__(self) -> None:
        # msgspec leaves out a default by identity: a decoded "S1" is the default's own
        # object only once interned, so stored and listed voices stay as they were.
        self.primary_speaker = sys.intern(self.primary_speaker)


class AudioPrompt(msgspec.Struct, frozen=True):
    """A prompt: mono float32 samples at ``sample_rate``.

    ``transient`` marks a one-off prompt, used by one request only (the first chunk's
    audio that a long text's later chunks continue from): caches should not keep it in
    place of lasting prompts such as a cloned voice's.
    """

    prompt_id: str
    samples: np.ndarray
    sample_rate: int
    transient: bool = False


EDITABLE_FIELDS = (
    "style", "primary_speaker", "audio_prompt", "audio_prompt_transcript", "seed", "backends",
)
MAX_STYLE_CHARS = 64
MAX_TRANSCRIPT_CHARS = 4096


def derive_seed(voice_id: str) -> int:
    """A fixed 32-bit seed per voice id (CRC-32: stable across processes and versions)."""
    return zlib.crc32(voice_id.encode())


def canonical_transcript(transcript: str) -> str:
    """Canonical speaker tags (``[s1]`` -> ``[S1]``) and single spaces; a tag outside
    ``[S1]`` to ``[S99]`` is a 400 (which of them a backend speaks is checked apart)."""

    text = canonical_tags(transcript, lambda tag: (
        f"audio_prompt_transcript has unknown speaker tag [{tag}]; a speaker tag is [S1] "
        "to [S99]"), VOICE_SPEAKERS)
    if text and not ANY_TAG.sub("", text).strip():
        raise InvalidInput("audio_prompt_transcript contains only speaker tags; write the "
                           "words spoken in the audio prompt")
    return text


def check_voice_speakers(voice: Voice, backend: str, speakers: tuple[str, ...]) -> None:
    """A 400 when ``voice`` names a speaker (its ``primary_speaker``, untagged text's tag,
    or one of its transcript's) that ``backend``, whose ``Capabilities.speakers`` are
    ``speakers``, does not speak."""
    tagged = [f"S{int(n)}" for n in ANY_TAG.findall(voice.audio_prompt_transcript or "")]
    speaker = next((s for s in (voice.primary_speaker, *tagged) if s not in speakers), None)
    if speaker is None:
        return
    fields = " and ".join(field for field, named in (
        ("primary_speaker", speaker == voice.primary_speaker),
        ("audio_prompt_transcript", speaker in tagged)) if named)
    raise InvalidInput(
        f"voice '{voice.voice_id}' speaks as [{speaker}] (its {fields}), but backend "
        f"'{backend}' knows {', '.join(f'[{s}]' for s in speakers)}; change the voice's "
        "speaker, or use it with a backend that speaks it (its backends field)",
        param="voice", code="invalid_value")


def build_voice(voice_id: str, given: Mapping[str, Any], base: Voice | None = None) -> Voice:
    """Apply ``given`` fields (only those the caller sent) to ``base`` and validate.

    ``primary_speaker`` and the transcript's leading tag must agree. When the caller sends
    only one of them the other follows: an untagged transcript gets
    ``[primary_speaker]``; a tagged transcript sets ``primary_speaker``.
    """
    check_id(voice_id, "voice_id")
    unknown = set(given) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown voice field(s): {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = msgspec.structs.asdict(base) if base else {}
    fields.update(given)
    if "audio_prompt" in given and not given["audio_prompt"] \
            and "audio_prompt_transcript" not in given:
        fields["audio_prompt_transcript"] = None  # removing the prompt removes its transcript
    fields["voice_id"] = voice_id
    fields["builtin"] = False

    style = fields.get("style") or "neutral"
    if len(style) > MAX_STYLE_CHARS:
        raise InvalidInput(f"style is {len(style)} characters; at most {MAX_STYLE_CHARS}")
    fields["style"] = style

    backends = fields.get("backends") or None
    if backends is not None:
        for name in backends:
            check_id(name, "backends entry")
        backends = sorted(set(backends))
    fields["backends"] = backends

    prompt = fields.get("audio_prompt") or None
    if prompt is not None:
        check_id(prompt, "audio_prompt")
    fields["audio_prompt"] = prompt

    transcript = fields.get("audio_prompt_transcript")
    transcript = canonical_transcript(transcript) if transcript else None
    if transcript and len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidInput(f"audio_prompt_transcript is {len(transcript)} characters; at "
                           f"most {MAX_TRANSCRIPT_CHARS}")
    if transcript and prompt is None:
        raise InvalidInput("audio_prompt_transcript is set but audio_prompt is not; upload the "
                           "audio with POST /audio_prompts/upload and name it in audio_prompt")

    speaker = fields.get("primary_speaker") or "S1"
    if transcript:
        tagged = speaker_of_leading_tag(transcript)
        if tagged is None:
            transcript = f"[{speaker}] {transcript}"
        elif "primary_speaker" in given and given["primary_speaker"] != tagged:
            raise InvalidInput(
                f"primary_speaker is {given['primary_speaker']} but audio_prompt_transcript "
                f"starts with [{tagged}]; a cloned voice speaks as its transcript's speaker, "
                "so make them match")
        elif "audio_prompt_transcript" in given:
            speaker = tagged
        elif tagged != speaker:
            raise InvalidInput(
                f"primary_speaker {speaker} does not match the stored audio_prompt_transcript, "
                f"which starts with [{tagged}]; send a transcript tagged [{speaker}] too")
    fields["primary_speaker"] = speaker
    fields["audio_prompt_transcript"] = transcript

    if fields.get("seed") is None:
        fields["seed"] = derive_seed(voice_id)
    try:
        return msgspec.convert(fields, Voice)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid voice: {exc}") from None
