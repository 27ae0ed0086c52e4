"""One backend replica: the body of a Ray actor, on any node of the cluster.

It builds the backend with the same plugin code and the same ``[plugins.<name>]`` section
as a local worker would, loads it, and runs the batches the API node's scheduler hands
it through :func:`ttsframe.core.speech.scheduler.run_batch`; a ``continuous`` backend (Dia)
instead runs its decoding loop on the replica for its lifetime, and the tasks of every
call join that loop (calls overlap: the actor is threaded). ``generate`` is a streaming
generator: progress and audio flow back while the batch runs, the results come last.
The actor is threaded, so ``cancel`` reaches a running batch's tokens at once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec

from ttsframe.cluster.wire import TaskPayload, encode_outcome, payload_fields, replica_prompts
from ttsframe.core.config.settings import Settings
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.plugins import PluginContext, load_plugins, plugin_config
from ttsframe.core.interfaces.synthesis import CancelToken, SynthesisTask
from ttsframe.core.speech.scheduler import run_batch
from ttsframe.core.voices.voice import AudioPrompt

log = logging.getLogger("ttsframe.cluster.replica")


def build_backend(settings: Settings, name: str) -> Backend:
    """The backend ``name`` as ``build_services`` makes it: plugins from entry points,
    its plugin's validated section."""

    _, registry, _ = load_plugins(settings.plugin_enabled)
    reg = registry.items["backend"].get(name)
    if reg is None:
        raise RuntimeError(f"no backend named '{name}' is installed on this node; install "
                           "the same plugins on every node of the cluster")
    ctx = PluginContext(plugin=reg.plugin, config=plugin_config(reg, settings),
                        data_dir=settings.data_dir, settings=settings)
    return reg.factory(ctx)


class Replica:
    """Ray actor class (wrapped with ``ray.remote`` by the pool, so importing this module
    needs no Ray)."""

    def __init__(self, settings_json: bytes, backend: str) -> None:
        self.settings = msgspec.json.decode(settings_json, type=Settings)
        self.name = backend
        self.backend: Backend | None = None
        self._lock = threading.Lock()
        # Batches run one at a time on one long-lived thread, as on a local worker, rather
        # than each on a new thread.
        self._runner = ThreadPoolExecutor(1, thread_name_prefix=f"ttsframe-{backend}")
        self._tokens: dict[str, CancelToken] = {}
        self._feed: _ThreadFeed | None = None  # a continuous backend's loop
        # Prompts kept by content (``wire.replica_prompts``: voices' and one-off prompts
        # apart); the API node resends one this replica dropped.
        self._prompts = replica_prompts()

    def load(self) -> dict[str, Any]:
        """Build and load the backend (once per process); report where it runs."""
        import ray

        with self._lock:
            if self.backend is None:
                backend = build_backend(self.settings, self.name)
                backend.load()
                self.backend = backend
                if backend.continuous:
                    self._feed = _ThreadFeed()
                    self._runner.submit(self._serve)
        caps = self.backend.capabilities
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "capabilities": msgspec.to_builtins(caps),
                "describe": self.backend.describe()}

    def describe(self) -> dict[str, Any]:
        return self.backend.describe() if self.backend is not None else {}

    def _serve(self) -> None:
        """The backend's decoding loop, for the replica's lifetime; if it raises, what
        it held fails and it starts again."""
        while True:
            try:
                self.backend.serve(self._feed)
            except Exception as exc:
                log.exception("the decoding loop of %s failed", self.name)
                self._feed.fail_outstanding(exc)

    def ping(self) -> int:
        return os.getpid()

    def cancel(self, task_id: str, reason: str) -> bool:
        token = self._tokens.get(task_id)
        if token is None:
            return False
        token.cancel(reason)
        return True

    def _prompt(self, payload: TaskPayload) -> AudioPrompt | None:
        if payload.prompt_key is None:
            return None
        if payload.prompt is not None:
            self._prompts.put(payload.prompt_key, payload.prompt,
                              transient=payload.prompt.transient)
            return payload.prompt
        return self._prompts.get(payload.prompt_key)

    def generate(self, payloads: list[TaskPayload]) -> Iterator[tuple]:
        """Yield ``("events", [...])`` while the batch runs, then ``("results", [...])``;
        or only ``("missing", keys)`` when prompts this replica does not hold were not
        sent (the API node then sends them)."""
        prompts = {p.task_id: self._prompt(p) for p in payloads}
        missing = [p.prompt_key for p in payloads
                   if p.prompt_key is not None and prompts[p.task_id] is None]
        if missing:
            yield ("missing", missing)
            return
        events: queue.SimpleQueue = queue.SimpleQueue()
        tasks = []
        for p in payloads:
            task = SynthesisTask(**payload_fields(p, prompts[p.task_id]))
            if p.stream:
                task.on_audio = _sender(events, "audio", task.task_id)
            if p.progress:
                task.on_progress = _sender(events, "progress", task.task_id)
            self._tokens[task.task_id] = task.cancel
            tasks.append(task)
        box: dict[str, list] = {}

        def work() -> None:
            try:
                box["results"] = run_batch(self.name, self.backend, tasks)
            finally:
                events.put(None)

        if self._feed is not None:  # the tasks join the running loop
            answers: dict[str, Any] = {}

            def answered(task: SynthesisTask, outcome: Any) -> None:
                answers[task.task_id] = outcome
                if len(answers) == len(tasks):
                    box["results"] = [answers[t.task_id] for t in tasks]
                    events.put(None)

            for task in tasks:
                self._feed.put(task, answered)
        else:
            self._runner.submit(work)
        try:
            done = False
            while not done:
                batch = [events.get()]
                while True:  # send what has piled up as one message
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                done = batch[-1] is None
                sent = [e for e in batch if e is not None]
                if sent:
                    yield ("events", sent)
            yield ("results", [encode_outcome(r) for r in box["results"]])
        finally:
            for task in tasks:
                self._tokens.pop(task.task_id, None)


class _ThreadFeed:
    """The ``TaskFeed`` of a replica's decoding loop: calls put tasks in from their
    threads; each answer goes to the callback its call gave."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[SynthesisTask] = []
        self._callbacks: dict[int, tuple[SynthesisTask, Any]] = {}

    @property
    def closed(self) -> bool:
        return False  # the actor's process ends with the replica

    def put(self, task: SynthesisTask, callback) -> None:
        with self._cond:
            self._callbacks[id(task)] = (task, callback)
            self._waiting.append(task)
            self._cond.notify()

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        with self._cond:
            while block and not self._waiting:
                self._cond.wait()
            taken, self._waiting[:limit] = self._waiting[:limit], []
            return taken

    def done(self, task: SynthesisTask, outcome: Any) -> None:
        with self._cond:
            entry = self._callbacks.pop(id(task), None)
        if entry is not None:
            entry[1](task, outcome)

    def fail_outstanding(self, error: BaseException) -> None:
        with self._cond:
            pending, self._callbacks, self._waiting = self._callbacks, {}, []
        for task, callback in pending.values():
            callback(task, error)


def _sender(events: queue.SimpleQueue, kind: str, task_id: str):
    def send(*args: Any) -> None:
        events.put((kind, task_id, *args))
    return send
