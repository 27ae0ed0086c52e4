"""The four plugin kinds, as the core sees them.

A plugin registers a *factory* for one of these through a hook (see ``hookspecs``); the core
builds the enabled ones at startup with a :class:`PluginContext` and injects them where
they are used. Nothing here imports a model library.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ttsframe.core.types import (
    AudioPrompt,
    Capabilities,
    Role,
    SynthesisResult,
    SynthesisTask,
    Voice,
)


class PluginContext(msgspec.Struct, kw_only=True):
    """What a factory receives: its own config section and the server's paths."""

    plugin: str
    config: Any
    data_dir: Path
    settings: Any


class Backend(abc.ABC):
    """Turns text into audio. One worker thread owns each backend instance.

    ``load`` and ``generate`` run on that thread, never on the event loop, and are never
    called concurrently, so a backend needs no locking of its own.
    """

    name: str

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def load(self) -> None:
        """Load weights. Raise with a message naming the fix if that is impossible."""

    @abc.abstractmethod
    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        """Generate a batch (``len(tasks) <= capabilities.max_batch_size``).

        Return one entry per task, in order: a result, or the exception that failed only
        that task. Poll ``task.cancel.cancelled`` between decoding steps and stop early.
        """

    def check(self, task: SynthesisTask) -> None:
        """Raise ``InvalidInput`` for a task this backend would refuse (limits only it
        knows). Called before the task is queued, on the event loop: keep it cheap and
        do not touch state the worker thread changes. Default: accept everything."""

    def batch_key(self, task: SynthesisTask) -> Hashable:
        """Tasks with equal keys may share one ``generate`` call; default: never."""
        return task.task_id

    def describe(self) -> dict[str, Any]:
        """Extra facts for ``/models`` and ``/health`` (model id, device, dtype)."""
        return {}

    def close(self) -> None:
        """Release resources at shutdown."""


class TextContext(msgspec.Struct, kw_only=True):
    """Request facts a preprocessor may use, and where it reports warnings."""

    role: Role | None
    voice: Voice
    backend: str
    speaker_tags: bool
    warnings: list[str] = msgspec.field(default_factory=list)


class TextPreprocessor(abc.ABC):
    """Rewrites or validates request text; preprocessors run in ascending ``order``."""

    name: str
    order: int = 100

    @abc.abstractmethod
    def process(self, text: str, ctx: TextContext) -> str:
        """Return the new text; raise ``InvalidInput`` to reject the request (400)."""


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


class Encoder(abc.ABC):
    """Turns float audio into one container/codec, whole or as a stream."""

    format: str
    content_type: str
    # True when ``open_stream(...).feed`` returns bytes as audio arrives (not only at
    # ``finish``): such formats stream by default on ``/v1/audio/speech``.
    incremental: bool = False

    @abc.abstractmethod
    def encode(self, samples: np.ndarray, sample_rate: int) -> bytes:
        """Encode mono float32 samples in [-1, 1]."""

    def open_stream(self, sample_rate: int) -> StreamWriter:
        """Start an incremental encoding; the default buffers until ``finish``."""
        return BufferedStream(self, sample_rate)

    def output_rate(self, sample_rate: int) -> int:
        """The rate a decoder reports for output made from ``sample_rate`` audio."""
        return sample_rate

    def response_headers(self, sample_rate: int) -> dict[str, str]:
        """Extra HTTP headers the client needs to play the output (raw PCM: its rate)."""
        return {}


class StreamWriter(abc.ABC):
    """Incremental encoder state: ``feed`` audio as it arrives, then ``finish``."""

    @abc.abstractmethod
    def feed(self, samples: np.ndarray) -> bytes: ...

    @abc.abstractmethod
    def finish(self) -> bytes: ...


class BufferedStream(StreamWriter):
    """Fallback for encoders that cannot stream: emits everything at the end."""

    def __init__(self, encoder: Encoder, sample_rate: int) -> None:
        self._encoder = encoder
        self._rate = sample_rate
        self._parts: list[np.ndarray] = []

    def feed(self, samples: np.ndarray) -> bytes:
        self._parts.append(samples)
        return b""

    def finish(self) -> bytes:
        audio = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        return self._encoder.encode(audio, self._rate)
