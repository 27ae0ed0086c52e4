"""Encoded audio prompts, kept so that a voice is not re-encoded by the codec every time.

Encoding a prompt runs the DAC encoder over its audio (seconds on a CPU for a 10 s
prompt); a cloned voice reuses the same prompt on every request and every chunk of a long
text. Entries are keyed by the prompt's content, so an overwritten prompt is never served
stale, and the cache holds at most ``size`` of them (least recently used out), so memory
stays bounded however many voices are created.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np


class PromptCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, prompt_id: str, samples: np.ndarray,
            encode: Callable[[np.ndarray], Any]) -> Any:
        """The cached encoding of ``samples``, or ``encode(samples)`` stored for next time."""
        key = (prompt_id, _digest(samples))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = encode(samples)
        with self._lock:
            self.misses += 1
            if self.size > 0:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _digest(samples: np.ndarray) -> str:
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
