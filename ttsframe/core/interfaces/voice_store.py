"""The voice-store plugin kind: where voices and their audio prompts are kept.

The server uses one store (``generation.voice_store``); routes reach it through
``core/voices/async_store.py`` so no call blocks the event loop.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from ttsframe.core.voices.voice import AudioPrompt, Voice


class VoiceStore(abc.ABC):
    """Keeps voices and audio prompts. Writes must be atomic and survive restarts."""

    name: str

    @abc.abstractmethod
    def list_voices(self) -> list[Voice]: ...

    @abc.abstractmethod
    def get_voice(self, voice_id: str) -> Voice:
        """Return the voice or raise ``NotFound``."""

    @abc.abstractmethod
    def load_prompt(self, prompt_id: str) -> AudioPrompt:
        """Return the prompt's mono samples or raise ``NotFound``."""

    def create_voice(self, voice: Voice) -> Voice:
        raise NotImplementedError(f"voice store {self.name!r} is read-only")

    def update_voice(self, voice_id: str, voice: Voice) -> Voice:
        raise NotImplementedError(f"voice store {self.name!r} is read-only")

    def delete_voice(self, voice_id: str, *, keep_prompt: bool = False) -> str | None:
        """Delete a custom voice and, unless ``keep_prompt`` or another voice uses it,
        its audio prompt; return the id of the prompt deleted with it."""
        raise NotImplementedError(f"voice store {self.name!r} is read-only")

    def list_prompts(self) -> list[dict[str, Any]]:
        return []

    def save_prompt(self, prompt_id: str, samples: np.ndarray, sample_rate: int, *,
                    overwrite: bool = False, source: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        """Store a prompt (``Conflict`` if it exists unless ``overwrite``); return its
        listing entry. ``source`` describes the upload (format, rate, file name)."""
        raise NotImplementedError(f"voice store {self.name!r} is read-only")

    def delete_prompt(self, prompt_id: str, *, cascade: bool = False) -> list[str]:
        """Delete a prompt; ``Conflict`` naming the voices that use it unless ``cascade``
        deletes them too. Return the deleted voices."""
        raise NotImplementedError(f"voice store {self.name!r} is read-only")
