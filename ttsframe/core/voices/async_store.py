"""The voice store, awaited: how the event loop reaches it.

A ``VoiceStore`` is synchronous and may read files or a database, so nothing on the event
loop calls it directly: routes and the speech service await these methods, each of which
runs the store's call in a worker thread.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
import numpy as np

from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.voices.voice import AudioPrompt, Voice


class AsyncVoices:
    def __init__(self, store: VoiceStore) -> None:
        self.store = store

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def list_voices(self) -> list[Voice]:
        return await self._run(self.store.list_voices)

    async def get_voice(self, voice_id: str) -> Voice:
        return await self._run(self.store.get_voice, voice_id)

    async def load_prompt(self, prompt_id: str) -> AudioPrompt:
        return await self._run(self.store.load_prompt, prompt_id)

    async def create_voice(self, voice: Voice) -> Voice:
        return await self._run(self.store.create_voice, voice)

    async def update_voice(self, voice_id: str, voice: Voice) -> Voice:
        return await self._run(self.store.update_voice, voice_id, voice)

    async def delete_voice(self, voice_id: str, *, keep_prompt: bool = False) -> str | None:
        return await self._run(self.store.delete_voice, voice_id, keep_prompt=keep_prompt)

    async def list_prompts(self) -> list[dict[str, Any]]:
        return await self._run(self.store.list_prompts)

    async def save_prompt(self, prompt_id: str, samples: np.ndarray, sample_rate: int, *,
                          overwrite: bool = False, source: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
        return await self._run(self.store.save_prompt, prompt_id, samples, sample_rate,
                               overwrite=overwrite, source=source)

    async def delete_prompt(self, prompt_id: str, *, cascade: bool = False) -> list[str]:
        return await self._run(self.store.delete_prompt, prompt_id, cascade=cascade)
