"""The built-in checks of a take, and what any check (a plugin's too) is given and returns.

Each check is cheap enough for every chunk (numpy over 20 ms frames; ``bench/quality.py``
measures it) and needs no model. A check looks at one take of one chunk: the backend's
audio before the server adds anything (SSML breaks, crossfades, tempo), so silence the
server inserts itself never counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttsframe.core.config.settings import QualityConfig
from ttsframe.core.text.tags import MARKUP

# Frames the checks work in: 20 ms.
FRAME_S = 0.02
FULL_SCALE = 0.999
# Bands of the spectral shape the loop check compares frames by.
LOOP_BANDS = 24
# Frames of a loop must match this closely (mean cosine of their spectral shapes).
LOOP_SIMILARITY = 0.97
# Shortest and longest repeated phrase the audio loop check looks for.
LOOP_PERIOD_S = (0.3, 2.5)


@dataclass
class Take:
    """One take of one chunk, as every check sees it."""

    text: str
    samples: np.ndarray
    sample_rate: int
    backend: str
    voice_id: str | None = None
    language: str | None = None
    # What the backend reported (``SynthesisResult.info``): ``budget_limited``, ``loop_s``.
    info: dict[str, Any] = field(default_factory=dict)
    # The backend's (or the configured, or the voice's calibrated) seconds per character.
    speech_rate: tuple[float, float] | None = None

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0

    @property
    def chars(self) -> int:
        return spoken_chars(self.text)


@dataclass
class CheckResult:
    """A check's verdict: ``score`` in [0, 1] (1 is best), ``reason`` a few words a
    listener understands (set when it fails)."""

    check: str
    passed: bool
    score: float = 1.0
    reason: str = ""


# A check: the take -> its verdict, or None when it does not apply.
QualityCheck = Callable[[Take], "CheckResult | None"]


def spoken_chars(text: str) -> int:
    """Characters spoken: speaker tags, nonverbals and runs of spaces aside."""
    return len(" ".join(MARKUP.sub(" ", text).split()))


def frame_levels(samples: np.ndarray, rate: int) -> np.ndarray:
    """dBFS of each 20 ms frame."""
    n = max(1, int(rate * FRAME_S))
    frames = samples[:samples.size // n * n].reshape(-1, n)
    if frames.size == 0:
        return np.zeros(0)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9))


class BuiltinChecks:
    """The built-in checks under ``[quality]``'s bounds (read at each take, so a
    ``PUT /config`` applies to the next one)."""

    def __init__(self, config: Callable[[], QualityConfig]) -> None:
        self.config = config

    def checks(self) -> list[QualityCheck]:
        c = self.config()
        return [check for on, check in (
            (c.check_budget, self.budget), (c.check_rate, self.rate),
            (c.check_silence, self.silence), (c.check_clipping, self.clipping),
            (c.check_loop, self.loop)) if on]

    def budget(self, take: Take) -> CheckResult | None:
        if not take.info.get("budget_limited"):
            return CheckResult("budget", True)
        return CheckResult("budget", False, 0.0,
                           "it ran out of its budget without an end of speech")

    def rate(self, take: Take) -> CheckResult | None:
        c = self.config()
        if take.speech_rate is None or take.chars < c.rate_min_chars:
            return None
        fastest, slowest = take.speech_rate
        voiced = voiced_seconds(take.samples, take.sample_rate, c.silence_dbfs)
        per_char = voiced / take.chars
        if per_char < fastest:
            return CheckResult("rate", False, round(per_char / fastest, 3),
                               f"{voiced:.2f} s of speech for {take.chars} characters is too "
                               f"fast or cut short (at least {fastest * take.chars:.2f} s "
                               "expected)")
        most = slowest * take.chars + c.rate_slack_s
        if take.seconds > most:
            return CheckResult("rate", False, round(most / take.seconds, 3),
                               f"{take.seconds:.2f} s for {take.chars} characters is too "
                               f"slow (at most {most:.1f} s expected)")
        return CheckResult("rate", True)

    def silence(self, take: Take) -> CheckResult | None:
        c = self.config()
        levels = frame_levels(take.samples, take.sample_rate)
        if levels.size == 0:
            return CheckResult("silence", False, 0.0, "the take is empty")
        loud = np.flatnonzero(levels > c.silence_dbfs)
        if loud.size == 0:
            return CheckResult("silence", False, 0.0, "the take is silent")
        lead = loud[0] * FRAME_S
        trail = (levels.size - 1 - loud[-1]) * FRAME_S
        gaps = np.diff(loud) - 1
        inner = float(gaps.max()) * FRAME_S if gaps.size else 0.0
        found = [(lead, c.max_leading_silence_s, "at the start"),
                 (inner, c.max_inner_silence_s, "inside"),
                 (trail, c.max_trailing_silence_s, "at the end")]
        for seconds, bound, where in found:
            if seconds > bound:
                return CheckResult("silence", False, round(bound / seconds, 3),
                                   f"{seconds:.1f} s of silence {where} (at most {bound:g} s)")
        return CheckResult("silence", True)

    def clipping(self, take: Take) -> CheckResult | None:
        c = self.config()
        if take.samples.size == 0:
            return None
        share = float(np.count_nonzero(np.abs(take.samples) >= FULL_SCALE)) / take.samples.size
        if share > c.max_clipped_share:
            return CheckResult("clipping", False, round(c.max_clipped_share / share, 3),
                               f"{share:.1%} of the samples are clipped")
        return CheckResult("clipping", True)

    def loop(self, take: Take) -> CheckResult | None:
        c = self.config()
        seconds = take.info.get("loop_s")  # a backend that watches its own codes
        if seconds is None:
            seconds = audio_loop_seconds(take.samples, take.sample_rate, c.silence_dbfs,
                                         c.max_loop_s)
        if seconds > c.max_loop_s:
            return CheckResult("loop", False, round(c.max_loop_s / seconds, 3),
                               f"its last {seconds:.1f} s repeat one phrase")
        return CheckResult("loop", True)


def voiced_seconds(samples: np.ndarray, rate: int, silence_dbfs: float) -> float:
    """The take's length without its leading and trailing silence."""
    levels = frame_levels(samples, rate)
    loud = np.flatnonzero(levels > silence_dbfs)
    return 0.0 if loud.size == 0 else (loud[-1] - loud[0] + 1) * FRAME_S


def audio_loop_seconds(samples: np.ndarray, rate: int, silence_dbfs: float,
                       bound_s: float) -> float:
    """How long the end of the audio repeats one phrase: the spectral shape of each
    20 ms frame (loudness aside) compared with the frame one period earlier, for the
    periods in ``LOOP_PERIOD_S``. A steady sound (one tone, a drone) changes shape too
    little to count as a phrase, so it is never a loop here."""
    n = max(1, int(rate * FRAME_S))
    window = int((bound_s + LOOP_PERIOD_S[1]) * 2 / FRAME_S)  # frames looked at
    tail = samples[-window * n:]
    frames = tail[:tail.size // n * n].reshape(-1, n)
    if frames.shape[0] < int(bound_s / FRAME_S):
        return 0.0
    spectrum = np.abs(np.fft.rfft(frames, axis=1))
    edges = np.linspace(1, spectrum.shape[1], LOOP_BANDS + 1).astype(int)
    bands = np.add.reduceat(spectrum, edges[:-1], axis=1)
    norms = np.linalg.norm(bands, axis=1, keepdims=True)
    levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(frames ** 2, axis=1)), 1e-9))
    shapes = bands / np.maximum(norms, 1e-12)
    voiced = levels > silence_dbfs
    if voiced.sum() < 2 or np.mean(np.linalg.norm(shapes[voiced] - shapes[voiced].mean(0),
                                                  axis=1)) < 0.15:
        return 0.0  # silence or one steady sound
    longest = 0
    total = shapes.shape[0]
    for period in range(int(LOOP_PERIOD_S[0] / FRAME_S), int(LOOP_PERIOD_S[1] / FRAME_S) + 1):
        if period * 2 > total:
            break
        both = voiced[period:] & voiced[:-period]
        same = np.einsum("ij,ij->i", shapes[period:], shapes[:-period]) >= LOOP_SIMILARITY
        match = same | ~both & (voiced[period:] == voiced[:-period])
        # The run of matching frames that reaches the end.
        misses = np.flatnonzero(~match)
        run = match.size if misses.size == 0 else match.size - 1 - misses[-1]
        if run >= period:  # at least two repeats of the phrase
            longest = max(longest, run + period)
    return longest * FRAME_S

