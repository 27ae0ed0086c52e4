"""Prompts kept by key in two least-recently-used areas: lasting ones (a voice's prompt,
used again and again) and one-off ones (``AudioPrompt.transient``: a long text's first
chunk, used by that request only). Kept apart, the one-off prompts of many long texts
never push a voice's prompt out. The Dia backend keeps its encoded prompts this way, and
a Ray replica (and the API node's record of it) the prompts' audio.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class PromptAreas:
    """Values by key in two LRUs of ``lasting`` and ``one_off`` entries (0: keep none).
    Not thread-safe: callers that share one hold their own lock."""

    def __init__(self, lasting: int, one_off: int) -> None:
        self.bounds = (lasting, one_off)
        self._areas: dict[bool, OrderedDict[Hashable, Any]] = {
            False: OrderedDict(), True: OrderedDict()}

    def put(self, key: Hashable, value: Any, *, transient: bool) -> None:
        lasting = self._areas[False]
        if transient and key in lasting:  # the same as a lasting prompt: it stays lasting
            lasting.move_to_end(key)
            return
        if not transient:
            self._areas[True].pop(key, None)
        items, size = self._areas[transient], self.bounds[transient]
        items[key] = value
        items.move_to_end(key)
        while len(items) > size:
            items.popitem(last=False)

    def get(self, key: Hashable) -> Any:
        """The value stored under ``key`` (now the most recently used), or ``None``."""
        for items in self._areas.values():
            if key in items:
                items.move_to_end(key)
                return items[key]
        return None

    def __contains__(self, key: Hashable) -> bool:
        return any(key in items for items in self._areas.values())

    def sizes(self) -> tuple[int, int]:
        """Entries held: (lasting, one-off)."""
        return len(self._areas[False]), len(self._areas[True])

    def clear(self) -> None:
        for items in self._areas.values():
            items.clear()
