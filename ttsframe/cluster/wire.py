"""What crosses the wire between the API node and a replica: plain, picklable values.

A ``SynthesisTask`` holds a cancel token (a thread event) and callbacks, which only make
sense in the process that made them; it travels as a :class:`TaskPayload`, and the
replica rebuilds a task with its own token and callbacks. Exceptions travel as their
class name and message, so a domain error (``InvalidInput``...) keeps its HTTP status.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import numpy as np

from ttsframe.core import errors
from ttsframe.core.interfaces.speech_types import GenerationParams
from ttsframe.core.interfaces.synthesis import BackendOptions, SynthesisResult, SynthesisTask
from ttsframe.core.voices.prompt_areas import PromptAreas
from ttsframe.core.voices.voice import AudioPrompt


class TaskPayload(msgspec.Struct, kw_only=True):
    task_id: str
    text: str
    params: GenerationParams
    # The backend's options Struct (``SynthesisTask.options``), pickled with the rest:
    # its class is the backend plugin's, which the replica has loaded too.
    options: Any = msgspec.field(default_factory=BackendOptions)
    # The prompt's content hash; its samples are sent only to a replica without it.
    prompt_key: str | None = None
    prompt: AudioPrompt | None = None
    prompt_transcript: str | None = None
    voice_id: str | None = None
    language: str | None = None
    text_bytes_hint: int | None = None
    attempt: int = 0
    notes: list[str] = []
    stream: bool = False
    progress: bool = False


class RemoteError(msgspec.Struct, kw_only=True):
    kind: str
    message: str
    headers: dict[str, str] = {}


def prompt_key(prompt: AudioPrompt) -> str:
    """A prompt's identity by content (samples and rate), not by its id: an edited prompt
    under the same id is a new prompt."""
    digest = hashlib.sha256(np.ascontiguousarray(prompt.samples, np.float32).tobytes())
    digest.update(str(prompt.sample_rate).encode())
    return digest.hexdigest()


def prompt_keys(tasks: list[SynthesisTask]) -> list[str | None]:
    """Each task's ``prompt_key`` (None without a prompt); a prompt object shared by
    several tasks (the chunks of one long text) is hashed once."""
    keys: dict[int, str] = {}
    for task in tasks:
        if task.prompt is not None and id(task.prompt) not in keys:
            keys[id(task.prompt)] = prompt_key(task.prompt)
    return [None if t.prompt is None else keys[id(t.prompt)] for t in tasks]


# Prompts a replica keeps, by content (``core.prompt_areas``: voices' prompts and one-off
# prompts apart). The API node's record of what a replica holds has the same bounds; when
# the two disagree the replica asks for the prompt again.
PROMPT_CACHE = 64
ONE_OFF_PROMPTS = 4


def replica_prompts() -> PromptAreas:
    """The prompt areas of one replica, or the API node's record of them."""
    return PromptAreas(PROMPT_CACHE, ONE_OFF_PROMPTS)


def to_payload(task: SynthesisTask, *, send_prompt: bool, key: str | None) -> TaskPayload:
    return TaskPayload(
        task_id=task.task_id, text=task.text, params=task.params, options=task.options,
        prompt_key=key,
        prompt=task.prompt if send_prompt else None,
        prompt_transcript=task.prompt_transcript, voice_id=task.voice_id,
        language=task.language, text_bytes_hint=task.text_bytes_hint,
        attempt=task.attempt,
        notes=list(task.notes), stream=task.on_audio is not None,
        progress=task.on_progress is not None)


def encode_outcome(outcome: SynthesisResult | BaseException) -> SynthesisResult | RemoteError:
    if isinstance(outcome, BaseException):
        headers = getattr(outcome, "headers", None) or {}
        message = getattr(outcome, "message", None) or str(outcome) or type(outcome).__name__
        return RemoteError(kind=type(outcome).__name__, message=message, headers=headers)
    return outcome


def decode_outcome(outcome: SynthesisResult | RemoteError) -> SynthesisResult | BaseException:
    if not isinstance(outcome, RemoteError):
        return outcome
    cls = getattr(errors, outcome.kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.TTSFrameError):
        return cls(outcome.message, headers=outcome.headers or None)
    return errors.GenerationFailed(f"{outcome.kind}: {outcome.message}")


def payload_fields(payload: TaskPayload, prompt: AudioPrompt | None) -> dict[str, Any]:
    """The ``SynthesisTask`` fields a payload carries (callbacks added by the replica)."""
    return dict(task_id=payload.task_id, text=payload.text, params=payload.params,
                options=payload.options,
                prompt=prompt, prompt_transcript=payload.prompt_transcript,
                voice_id=payload.voice_id, language=payload.language,
                text_bytes_hint=payload.text_bytes_hint,
                attempt=payload.attempt, notes=list(payload.notes))
