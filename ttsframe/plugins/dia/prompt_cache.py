"""Encoded audio prompts, kept so that a voice is not re-encoded by the codec every time.

Encoding a prompt runs the DAC encoder over its audio (seconds on a CPU for a 10 s
prompt); a cloned voice reuses the same prompt on every request and every chunk of a long
text. Entries are keyed by the prompt's content, so an overwritten prompt is never served
stale, and the cache holds at most ``size`` of them (least recently used out), so memory
stays bounded however many voices are created.

One-off prompts (``AudioPrompt.transient``: a long text's first chunk, which its later
chunks continue from) go to a separate, small area (``one_off_size`` entries): the rows of one
batch still share one encoding, but a server speaking many long texts never pushes a
voice's encoded prompt out for them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ttsframe import PromptAreas

# One-off prompts kept at least: enough for the few long texts a backend has in flight.
ONE_OFF_SIZE = 4


class PromptCache:
    def __init__(self, size: int, one_off_size: int = ONE_OFF_SIZE) -> None:
        self._areas = PromptAreas(size, one_off_size)
        self._lock = threading.Lock()
        self._counts = {False: [0, 0], True: [0, 0]}  # hits and misses, by ``transient``

    # The lasting area's figures: what ``prompt_cache_size`` bounds and the metrics count.
    @property
    def size(self) -> int:
        return self._areas.bounds[0]

    @property
    def hits(self) -> int:
        return self._counts[False][0]

    @property
    def misses(self) -> int:
        return self._counts[False][1]

    def __len__(self) -> int:
        return self._areas.sizes()[0]

    def one_off(self) -> dict[str, int]:
        """Entries, bound, hits and misses of the one-off area."""
        with self._lock:
            hits, misses = self._counts[True]
            return {"entries": self._areas.sizes()[1], "max": self._areas.bounds[1],
                    "hits": hits, "misses": misses}

    def get(self, prompt_id: str, samples: np.ndarray,
            encode: Callable[[np.ndarray], Any], *, transient: bool = False) -> Any:
        """The cached encoding of ``samples``, or ``encode(samples)`` stored for next time
        (in the one-off area when ``transient``)."""
        key = (prompt_id, _digest(samples))
        counts = self._counts[transient]
        with self._lock:
            value = self._areas.get(key)
            if value is not None:
                counts[0] += 1
                return value
        value = encode(samples)
        with self._lock:
            counts[1] += 1
            self._areas.put(key, value, transient=transient)
        return value

    def clear(self) -> None:
        with self._lock:
            self._areas.clear()


def _digest(samples: np.ndarray) -> str:
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
