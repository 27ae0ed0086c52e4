"""The ``espeak`` backend: formant synthesis, instant on any CPU, 22.05 kHz mono.

ttsframe voices map to eSpeak voices (a language plus an optional ``+variant``); a
request's ``language`` (sent e.g. by the XTTS API routes) switches the language and
keeps the variant. eSpeak is deterministic, so sampling parameters do not apply.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

from ttsframe import (
    Backend,
    BackendOptions,
    Cancelled,
    Capabilities,
    SynthesisResult,
    SynthesisTask,
)
from ttsframe_espeak.library import VoiceSettings, espeak_library, language_voices

SAMPLE_RATE = 22050

# The six built-in ttsframe voices as distinct eSpeak voices.
DEFAULT_VOICES = {
    "alloy": "en-us+m3",
    "echo": "en-us+m1",
    "fable": "en-gb+f3",
    "nova": "en-us+f2",
    "onyx": "en-us+m7",
    "shimmer": "en-us+f4",
}

SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
Rate = Annotated[int, msgspec.Meta(ge=80, le=450)]
Pitch = Annotated[int, msgspec.Meta(ge=0, le=99)]
WordGap = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class EspeakConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.espeak]``."""

    voice: str = "en-us"  # for ttsframe voices not listed in ``voices``
    voices: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_VOICES))
    rate: Rate = 175  # words per minute
    pitch: Pitch = 50
    pitch_range: Pitch = 50
    word_gap_ms: WordGap = 0
    follow_language: bool = True  # a request's language replaces the voice's language
    max_text_bytes: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000


class EspeakOptions(BackendOptions, kw_only=True, frozen=True):
    """A request's own eSpeak settings (``options``); left out: ``[plugins.espeak]``'s."""

    rate: Annotated[Rate | None, msgspec.Meta(description="Words per minute.")] = None
    pitch: Annotated[Pitch | None, msgspec.Meta(description="Base pitch, 0-99.")] = None
    pitch_range: Annotated[Pitch | None, msgspec.Meta(
        description="How far the pitch moves, 0 (monotone) to 99.")] = None
    word_gap_ms: Annotated[WordGap | None, msgspec.Meta(
        description="Extra pause between words, in milliseconds.")] = None


class EspeakBackend(Backend):
    name = "espeak"
    options = EspeakOptions

    def __init__(self, config: EspeakConfig | None = None) -> None:
        self.config = config or EspeakConfig()
        self._library = None
        self._voices: dict[str, str | None] = {}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(sample_rate=SAMPLE_RATE, max_text_bytes=self.config.max_text_bytes,
                            supports_streaming=True,
                            languages=tuple(sorted(language_voices())))

    def load(self) -> None:
        library = espeak_library()
        if library.sample_rate != SAMPLE_RATE:
            raise RuntimeError(f"libespeak-ng runs at {library.sample_rate} Hz, expected "
                               f"{SAMPLE_RATE}; install espeakng-loader>=0.2.4")
        self._library = library
        configured = {"voice": self.config.voice,
                      **{f"voices.{k}": v for k, v in self.config.voices.items()}}
        resolved = {}
        for key, voice in configured.items():
            resolved[voice] = self._resolve(voice)
            if resolved[voice] is None:
                self._library = None
                known = ", ".join(sorted(language_voices())[:30])
                raise ValueError(
                    f"[plugins.espeak] {key} = {voice!r} is not an eSpeak voice; use a "
                    f"language code ({known}, ...) optionally with a variant such as '+f3'")
        self._voices = resolved

    def _resolve(self, voice: str) -> str | None:
        """A voice name the library accepts: as given, or its language code mapped to
        eSpeak's voice file (``en-gb`` -> ``en``, ``zh`` -> ``cmn``)."""
        if self._library.has_voice(voice):
            return voice
        language, plus, variant = voice.partition("+")
        found = language_voices().get(language.lower())
        if found and self._library.has_voice(found + plus + variant):
            return found + plus + variant
        return None

    def describe(self) -> dict[str, Any]:
        return {"engine": "eSpeak NG (espeakng-loader)", "voice": self.config.voice,
                "rate_wpm": self.config.rate}

    def espeak_voice(self, task: SynthesisTask) -> tuple[str, list[str]]:
        """The eSpeak voice for a task, and notes for the caller."""
        voice = self.config.voices.get(task.voice_id or "", self.config.voice)
        voice = self._voices.get(voice) or voice
        if not (self.config.follow_language and task.language):
            return voice, []
        language, _, variant = voice.partition("+")
        wanted = task.language.lower().replace("_", "-")
        if wanted.split("-")[0] == language.split("-")[0]:
            return voice, []
        table = language_voices()
        found = table.get(wanted) or table.get(wanted.split("-")[0])
        if found is None:
            return voice, [f"eSpeak has no language '{task.language}'; speaking with "
                           f"'{voice}'"]
        return f"{found}+{variant}" if variant else found, []

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        return [self._speak(task) for task in tasks]

    def _speak(self, task: SynthesisTask) -> SynthesisResult | BaseException:
        if self._library is None:
            return RuntimeError("espeak backend used before load()")
        if task.cancel.cancelled:
            return Cancelled(task.cancel.reason)
        voice, notes = self.espeak_voice(task)
        ignored = [name for name in SAMPLING_PARAMS if getattr(task.params, name) is not None]
        if ignored:
            notes.append(f"backend 'espeak' ignores {', '.join(ignored)}")
        chunks: list[np.ndarray] = []
        total = len(task.text)

        def on_chunk(samples: np.ndarray, position: int) -> bool:
            if samples.size:
                chunks.append(samples)
                if task.on_audio is not None:
                    task.on_audio(samples)
            if task.on_progress is not None:
                task.on_progress(min(position, total), total)
            return task.cancel.cancelled

        cfg, asked = self.config, task.options
        if not isinstance(asked, EspeakOptions):
            asked = EspeakOptions()

        def pick(name: str) -> int:
            value = getattr(asked, name)
            return getattr(cfg, name) if value is None else value

        settings = VoiceSettings(voice=voice, rate=pick("rate"), pitch=pick("pitch"),
                                 pitch_range=pick("pitch_range"),
                                 word_gap_ms=pick("word_gap_ms"))
        try:
            self._library.synthesize(task.text, settings, on_chunk)
        except Exception as exc:
            return exc
        if task.cancel.cancelled:
            return Cancelled(task.cancel.reason)
        samples = np.concatenate(chunks) if chunks else np.zeros(1, np.float32)
        return SynthesisResult(samples=samples, sample_rate=SAMPLE_RATE, notes=notes,
                               info={"espeak_voice": voice})
