"""A take that ends in a loop, found in its codes: the quality stage's loop check reads
``info["loop_s"]`` (``core/speech/quality``) rather than guessing from the audio.

Dia's loops repeat a phrase: the same codes, one period apart, frame after frame up to
the end. Sampling changes a few codes between repeats, so a frame matches the one a
period earlier when most of its channels do. numpy only; a take costs well under a
millisecond per second of audio.
"""

from __future__ import annotations

import numpy as np

# Phrases of 0.3 to 3 s (Dia: 86 frames a second).
PERIOD_S = (0.3, 3.0)
# A frame repeats the one a period earlier when at least this share of its channels do.
SAME_SHARE = 0.6
# Only the end is looked at: loops longer than this report as this long.
WINDOW_S = 12.0


def loop_seconds(codes: np.ndarray, frames_per_second: float) -> float:
    """How many seconds at the end of ``codes`` (frames, channels) repeat one phrase
    (at least twice); 0.0 when they do not."""
    codes = codes[-int(WINDOW_S * frames_per_second):]
    frames = codes.shape[0]
    shortest = max(1, int(PERIOD_S[0] * frames_per_second))
    longest = int(PERIOD_S[1] * frames_per_second)
    best = 0
    periods = np.arange(shortest, min(longest, frames // 2) + 1)
    if periods.size == 0:
        return 0.0
    # A loop reaching the end has its last frame repeat one period earlier: only those
    # periods are followed back (most takes have none).
    last = np.mean(codes[-1] == codes[frames - 1 - periods], axis=1) >= SAME_SHARE
    for period in periods[last]:
        same = np.mean(codes[period:] == codes[:-period], axis=1) >= SAME_SHARE
        misses = np.flatnonzero(~same)
        run = same.size if misses.size == 0 else same.size - 1 - int(misses[-1])
        if run >= period:
            best = max(best, run + period)
    return best / frames_per_second
