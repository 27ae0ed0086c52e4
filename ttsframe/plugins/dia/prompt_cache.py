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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

# One-off prompts kept at least: enough for the few long texts a backend has in flight.
ONE_OFF_SIZE = 4


class _Area:
    """One LRU of encodings with its own counters."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def figures(self) -> dict[str, int]:
        return {"entries": len(self.items), "max": self.size, "hits": self.hits,
                "misses": self.misses}


class PromptCache:
    def __init__(self, size: int, one_off_size: int = ONE_OFF_SIZE) -> None:
        self._lasting = _Area(size)
        self._one_off = _Area(one_off_size)
        self._lock = threading.Lock()

    # The lasting area's figures: what ``prompt_cache_size`` bounds and the metrics count.
    @property
    def size(self) -> int:
        return self._lasting.size

    @property
    def hits(self) -> int:
        return self._lasting.hits

    @property
    def misses(self) -> int:
        return self._lasting.misses

    def __len__(self) -> int:
        return len(self._lasting.items)

    def one_off(self) -> dict[str, int]:
        """Entries, bound, hits and misses of the one-off area."""
        with self._lock:
            return self._one_off.figures()

    def get(self, prompt_id: str, samples: np.ndarray,
            encode: Callable[[np.ndarray], Any], *, transient: bool = False) -> Any:
        """The cached encoding of ``samples``, or ``encode(samples)`` stored for next time
        (in the one-off area when ``transient``)."""
        area = self._one_off if transient else self._lasting
        key = (prompt_id, _digest(samples))
        with self._lock:
            if key in area.items:
                area.items.move_to_end(key)
                area.hits += 1
                return area.items[key]
        value = encode(samples)
        with self._lock:
            area.misses += 1
            if area.size > 0:
                area.items[key] = value
                area.items.move_to_end(key)
                while len(area.items) > area.size:
                    area.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._lasting.items.clear()
            self._one_off.items.clear()


def _digest(samples: np.ndarray) -> str:
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
