"""The backend plugin kind: what turns text into audio, as the core sees it.

A plugin registers a factory for a ``Backend`` (``register_backends``); the core builds it
at startup and hands it to one worker thread (``core/scheduler.py``). Nothing here
imports a model library.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from typing import Any

from ttsframe.core.synthesis import Capabilities, SynthesisResult, SynthesisTask


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
