"""The backend plugin kind: what turns text into audio, as the core sees it.

A plugin registers a factory for a ``Backend`` (``register_backends``); the core builds it
at startup and hands it to one worker thread (``core/speech/scheduler.py``). Nothing here
imports a model library.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from typing import Any, Protocol

import msgspec

from ttsframe.core.interfaces.synthesis import (
    BackendOptions,
    Capabilities,
    SynthesisResult,
    SynthesisTask,
)
from ttsframe.core.speech.options import option_schema


class TaskFeed(Protocol):
    """What a backend with a decoding loop (``Backend.serve``) takes tasks from and
    hands results to. The core offers tasks oldest first and never more than the
    backend's ``capabilities.max_batch_size`` at once (running and waiting together)."""

    @property
    def closed(self) -> bool:
        """The server is stopping: return from ``serve`` once nothing is running."""

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        """Up to ``limit`` tasks handed to the backend, oldest first. With ``block``,
        wait until one comes or the feed closes (then ``[]``); else return at once."""

    def done(self, task: SynthesisTask, outcome: SynthesisResult | BaseException) -> None:
        """Answer ``task`` (a result, or the exception that failed it); call it from the
        loop's thread as soon as the task has ended, whatever its mates are doing."""


class Backend(abc.ABC):
    """Turns text into audio. One worker thread owns each backend instance.

    ``load`` and ``generate`` (or ``serve``) run on that thread, never on the event loop,
    and are never called concurrently, so a backend needs no locking of its own.

    Two kinds exist. A backend that batches per call implements ``generate``: the core
    collects compatible tasks (``batch_key``) into one call and waits for the whole
    call. A backend with its own decoding loop sets ``continuous = True`` and also
    implements ``serve``: the core then hands each task over as soon as the loop has
    room (``take``), and each task's answer comes back the moment it ends (``done``),
    so a task never waits for another to finish.
    """

    name: str
    # The options it takes besides the shared ``GenerationParams``: a ``BackendOptions``
    # subclass. Requests send them as ``options`` (checked against it before queueing, a
    # 400 naming the backend and the field); the backend reads them as ``task.options``;
    # ``/models`` publishes their schema.
    options: type[msgspec.Struct] = BackendOptions
    # True for a backend whose ``serve`` runs a decoding loop that tasks join and leave
    # between steps.
    continuous: bool = False

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

    def serve(self, feed: TaskFeed) -> None:
        """The decoding loop of a ``continuous`` backend: take tasks from ``feed`` between
        steps (at most ``capabilities.max_batch_size`` in the loop), answer each through
        ``feed.done`` as soon as it ends or is cancelled, and return once ``feed.closed``
        and nothing runs. Honour ``task.cancel``, ``on_audio`` and ``on_progress`` as
        ``generate`` does. ``generate`` must still work (for callers outside the core)."""
        raise NotImplementedError(f"backend {self.name} has no decoding loop")

    def loop_stats(self) -> dict[str, int]:
        """A ``continuous`` backend's loop now: ``rows`` running, ``waiting`` to join,
        ``joins`` since start (``joins_while_running``: into a loop that had rows)."""
        return {}

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


def options_schema(backend: Backend) -> dict[str, Any]:
    """The JSON schema of the options ``backend`` takes (``/models``, ``/v1/models``)."""
    return option_schema(backend.options)
