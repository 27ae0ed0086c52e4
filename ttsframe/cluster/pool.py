"""Backends as Ray actors: a pool of replicas standing where a local worker would.

The scheduler keeps its one queue per backend and hands each batch to an idle replica
(``wait_room`` + ``launch``, the interface of every worker), so N replicas run N batches
at once; on each replica the backend runs its batch as one ``generate`` call (Dia's
through its decoding loop, every row with its own parameters). Jobs, voices and the
queue stay on the API node; a replica gets task payloads (``wire.py``) and sends back
progress, audio and results. A replica that dies mid-batch is marked ``loading`` while
Ray restarts it; its batch is handed once to another replica, except streams that
already sent audio, which end with an error rather than repeat or mix audio.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ttsframe.cluster.wire import decode_outcome, prompt_keys, replica_prompts, to_payload
from ttsframe.core.config.settings import ClusterConfig, Settings
from ttsframe.core.errors import BackendUnavailable, Cancelled, GenerationFailed
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.synthesis import Capabilities, SynthesisResult, SynthesisTask
from ttsframe.core.voices.prompt_areas import PromptAreas

log = logging.getLogger("ttsframe.cluster")

# How long a batch whose replica died waits for another replica before failing.
RETRY_WAIT_S = 120.0
CANCEL_POLL_S = 0.01
WATCH_EVERY_S = 2.0
# Results up to this size travel inside the replica's reply instead of through Ray's
# object store (Ray's default cut is 100 KiB): a store object on another node costs the
# API node a further pull, about 5 ms for a few seconds of audio. 4 MiB holds about 23 s
# of 44.1 kHz float32 audio; longer results take the store, where the pull matters less.
INLINE_RESULT_BYTES = 4 << 20
# Environment of the replicas' processes. Ray starts worker processes at nice 15
# (``worker_niceness``) so that its own daemons stay responsive; a replica is the
# server's main work, and at nice 15 every other busy process on its node slows it down.
REPLICA_ENV = {"RAY_worker_niceness": "0",
               "RAY_max_direct_call_object_size": str(INLINE_RESULT_BYTES)}


class RayCluster:
    """The connection to Ray, made once for every backend's pool (in a thread: joining a
    cluster or starting Ray takes seconds)."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.error: str | None = None
        self._lock = asyncio.Lock()
        self._connected = False

    @property
    def where(self) -> str:
        return f"the Ray cluster at '{self.config.address}'" if self.config.address \
            else "a local Ray instance"

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"namespace": "ttsframe", "include_dashboard": False,
                                  "logging_level": logging.WARNING}
        if self.config.address:
            _probe(self.config.address)
            kwargs["address"] = self.config.address
        ray.init(**kwargs)

    async def connect(self) -> None:
        """Connect once; raise ``BackendUnavailable`` naming the cluster and the fix."""
        async with self._lock:
            if self._connected:
                return
            if self.error is None:
                try:
                    await asyncio.to_thread(self._connect)
                    self._connected = True
                    return
                except ImportError:
                    self.error = ("cluster.engine is 'ray' but Ray is not installed: "
                                  "pip install 'ttsframe[ray]'")
                except Exception as exc:
                    self.error = (f"cannot connect to {self.where}: {exc or type(exc).__name__}"
                                  ". Check cluster.address (or --ray-address) and that the "
                                  "cluster is running (ray status), then restart the server")
            raise BackendUnavailable(self.error)

    def gpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("GPU", 0))

    def shutdown(self) -> None:
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False


@dataclass
class ReplicaSlot:
    """The API node's view of one replica actor."""

    index: int
    actor: Any = None
    state: str = "loading"
    error: str | None = None
    node_id: str | None = None
    pid: int | None = None
    busy: int = 0
    restarts: int = 0
    last_used: float = 0.0
    capabilities: Capabilities | None = None
    describe: dict[str, Any] = field(default_factory=dict)
    # Prompt contents this replica holds (by ``prompt_key``): sent once, then cached;
    # bounded as the replica's own areas are, so one-off keys are not kept forever.
    prompts: PromptAreas = field(default_factory=replica_prompts)
    prompts_sent: int = 0  # how many times prompt audio was shipped to this replica

    def health(self) -> dict[str, Any]:
        return {"replica": self.index, "state": self.state, "error": self.error,
                "node_id": self.node_id, "pid": self.pid, "busy": self.busy,
                "restarts": self.restarts, "prompts_sent": self.prompts_sent}


class RemoteBackend(Backend):
    """The API node's stand-in for a backend that runs on replicas: the core reads its
    capabilities (as a loaded replica reports them), options and batch keys; it never
    generates.

    Batch keys come from an unloaded local instance of the backend, which may group
    more cautiously than a loaded one; the replica's backend still checks each batch.
    """

    def __init__(self, local: Backend, pool: RayWorkerPool) -> None:
        self.local = local
        self.pool = pool
        self.name = getattr(local, "name", pool.name)
        self.options = local.options  # requests' options are checked on the API node

    @property
    def capabilities(self) -> Capabilities:
        for slot in self.pool.slots_list:
            if slot.capabilities is not None:
                return slot.capabilities
        return self.local.capabilities

    def batch_key(self, task: SynthesisTask):
        return self.local.batch_key(task)

    def describe(self) -> dict[str, Any]:
        for slot in self.pool.slots_list:
            if slot.state == "ready":
                return dict(slot.describe)
        return {}

    def load(self) -> None:
        raise RuntimeError("a remote backend loads on its replicas")

    def generate(self, tasks):
        raise RuntimeError("a remote backend generates on its replicas")


class RayWorkerPool:
    """``replicas`` actors of one backend; the scheduler's worker for that backend."""

    def __init__(self, name: str, local: Backend, settings: Settings,
                 cluster: RayCluster) -> None:
        self.name = name
        self.settings = settings
        self.cluster = cluster
        self.backend = RemoteBackend(local, self)
        self.slots_list = [ReplicaSlot(i) for i in range(settings.cluster.replicas)]
        self._waiters: list[asyncio.Future] = []
        self._tasks: set[asyncio.Task] = set()
        self._cluster_error: str | None = None
        self._limit = 1  # tasks per replica at once (the scheduler's batch limit)

    # -- state the core reads -----------------------------------------------------------

    @property
    def slots(self) -> int:
        return len(self.slots_list)

    @property
    def busy(self) -> int:
        return sum(s.busy for s in self.slots_list)

    @property
    def state(self) -> str:
        states = {s.state for s in self.slots_list}
        if "ready" in states:
            return "ready"
        return "loading" if "loading" in states else "failed"

    @property
    def error(self) -> str | None:
        if self.state == "ready":
            return None
        reasons = sorted({s.error for s in self.slots_list if s.error})
        return "; ".join(reasons) or None

    def replica_health(self) -> list[dict[str, Any]]:
        return [s.health() for s in self.slots_list]

    def check_ready(self) -> None:
        state = self.state
        if state == "loading":
            why = f" ({self.error})" if self.error else ""
            raise BackendUnavailable(
                f"backend '{self.name}' has no replica ready yet{why}; retry shortly "
                "(GET /health shows each replica)", headers={"Retry-After": "5"})
        if state == "failed":
            raise BackendUnavailable(
                f"backend '{self.name}' has no replica: {self.error}. Fix the [cluster] or "
                "[plugins] section of ttsframe.toml (see GET /health) and restart the server")

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.cluster.connect()
        except BackendUnavailable as exc:
            self._fail_all(exc.message)
            return
        try:
            actor_class = self._actor_class()
            for slot in self.slots_list:
                slot.actor = actor_class.remote(msgspec.json.encode(self.settings), self.name)
        except Exception as exc:
            self._fail_all(f"starting replicas on {self.cluster.where} failed: {exc}")
            return
        watch = asyncio.create_task(self._watch(), name=f"watch-{self.name}")
        self._tasks.add(watch)
        watch.add_done_callback(self._tasks.discard)
        await asyncio.gather(*(self._load(slot) for slot in self.slots_list))

    async def _watch(self) -> None:
        """Notice a replica lost while idle (a busy one shows it in its batch): ping the
        idle ones; a dead actor, or one answering from a new process, is reloaded."""
        import ray.exceptions as rex

        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            for slot in self.slots_list:
                if slot.state != "ready" or slot.busy:
                    continue
                try:
                    pid = await asyncio.wait_for(slot.actor.ping.remote(), WATCH_EVERY_S * 5)
                except rex.RayActorError as exc:
                    if slot.state == "ready" and not slot.busy:
                        self._lost(slot, exc)
                    continue
                except (TimeoutError, rex.RayError):
                    continue  # slow to answer is not lost
                if pid != slot.pid and slot.state == "ready":
                    self._lost(slot, RuntimeError(f"process {slot.pid} was replaced by {pid}"))

    def _actor_class(self):
        import ray

        from ttsframe.cluster.replica import Replica

        config = self.settings.cluster
        gpus = config.gpus_per_replica
        if gpus is None:
            gpus = 1.0 if self.cluster.gpus() > 0 else 0.0
        return ray.remote(Replica).options(
            num_cpus=config.cpus_per_replica, num_gpus=gpus, max_restarts=-1,
            # A continuous backend has one call per task waiting at once (up to
            # generation.workers, at most 64), beside cancels and health calls.
            max_task_retries=0, max_concurrency=72, scheduling_strategy="SPREAD",
            runtime_env={"env_vars": REPLICA_ENV})

    def _fail_all(self, reason: str) -> None:
        for slot in self.slots_list:
            slot.state, slot.error = "failed", reason
        log.error("backend %s: %s", self.name, reason)
        self._notify()

    async def _load(self, slot: ReplicaSlot) -> None:
        """Load the replica's backend; while its actor restarts, keep asking."""
        import ray.exceptions as rex

        started = time.perf_counter()
        while True:
            try:
                info = await slot.actor.load.remote()
                break
            except rex.RayActorError as exc:  # dead or restarting: Ray brings it back
                slot.error = f"restarting: {_short(exc)}"
                await asyncio.sleep(0.5)
            except Exception as exc:
                cause = getattr(exc, "cause", None) or exc
                slot.state, slot.error = "failed", str(cause) or type(cause).__name__
                log.error("replica %s-%d failed to load: %s", self.name, slot.index, slot.error)
                self._notify()
                return
        slot.node_id, slot.pid = info["node_id"], info["pid"]
        slot.capabilities = msgspec.convert(info["capabilities"], Capabilities)
        slot.describe = info["describe"]
        slot.prompts.clear()
        slot.state, slot.error = "ready", None
        log.info("replica %s-%d ready on node %s (pid %s) in %.1f s", self.name, slot.index,
                 slot.node_id, slot.pid, time.perf_counter() - started)
        self._notify()

    def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.cluster._connected:
            import ray

            for slot in self.slots_list:
                if slot.actor is not None:
                    try:
                        ray.kill(slot.actor, no_restart=True)
                    except Exception:
                        log.debug("killing replica %d failed", slot.index, exc_info=True)

    # -- dispatch -------------------------------------------------------------------------

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _idle(self) -> ReplicaSlot | None:
        """The ready replica with the most room (least recently used among equals):
        an idle one, or for a continuous backend one with a free row."""
        limit = self._limit if self.continuous else 1
        free = [s for s in self.slots_list if s.state == "ready" and s.busy < limit]
        return min(free, key=lambda s: (s.busy, s.last_used)) if free else None

    async def _until(self, ready, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not ready():
            waiter = loop.create_future()
            self._waiters.append(waiter)
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            try:
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                return ready()
        return True

    async def wait_idle(self) -> None:
        """Until a replica is ready and idle, or none can ever be (all failed)."""
        await self._until(lambda: self._idle() is not None or self.state == "failed")

    def _claim(self, tasks: list[SynthesisTask]) -> ReplicaSlot | None:
        slot = self._idle()
        if slot is not None:
            slot.busy += len(tasks)
            slot.last_used = time.monotonic()
        return slot

    def _release(self, slot: ReplicaSlot, count: int) -> None:
        slot.busy = max(0, slot.busy - count)
        self._notify()

    @property
    def continuous(self) -> bool:
        """Each replica runs the backend's decoding loop: tasks join it one call each,
        up to the worker limit per replica, on the replica with the most room."""
        return bool(getattr(self.backend.local, "continuous", False))

    def room(self, limit: int) -> int:
        """Per-call backends: a whole batch when a replica is idle. Continuous ones: the
        free rows of the replica with the most. (All failed: answered at once.)"""
        self._limit = limit
        if self.state == "failed":
            return limit
        slot = self._idle()
        if slot is None:
            return 0
        return limit - slot.busy if self.continuous else limit

    async def wait_room(self, limit: int) -> None:
        self._limit = limit
        await self.wait_idle()

    def loop_stats(self) -> dict[str, int]:
        return {}

    def launch(self, tasks: list[SynthesisTask]) -> tuple[str, list[asyncio.Future]]:
        """Claim an idle replica now and run the batch on it in a task; one future per
        task, all answered when the batch returns."""
        slot = self._claim(tasks)
        where = f"{self.name}-{slot.index}" if slot is not None else f"{self.name}-none"
        if self.continuous:  # one call per task: each is answered as it ends
            calls = [self._start(slot, [task], where) for task in tasks]
            futures = []
            for call in calls:
                future = asyncio.get_running_loop().create_future()
                call.add_done_callback(_splitter([future], 1))
                futures.append(future)
            return where, futures
        task = self._start(slot, tasks, where)
        futures = [asyncio.get_running_loop().create_future() for _ in tasks]
        task.add_done_callback(_splitter(futures, len(tasks)))
        return where, futures

    def _start(self, slot: ReplicaSlot | None, tasks: list[SynthesisTask],
               where: str) -> asyncio.Task:
        task = asyncio.create_task(self._run(slot, tasks), name=f"run-{where}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, slot: ReplicaSlot | None,
                   tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        import ray.exceptions as rex

        if slot is None:
            return [BackendUnavailable(f"backend '{self.name}' has no replica: "
                                       f"{self.error}")] * len(tasks)
        streamed: set[str] = set()
        try:
            return await self._call(slot, tasks, streamed)
        except rex.RayActorError as exc:
            self._lost(slot, exc)
        except Exception as exc:  # anything else Ray raises fails this batch, not the pool
            log.exception("batch on replica %s-%d failed", self.name, slot.index)
            return [GenerationFailed(f"replica {self.name}-{slot.index} failed: "
                                     f"{_short(exc)}")] * len(tasks)
        finally:
            self._release(slot, len(tasks))
        return await self._retry(tasks, streamed)

    async def _retry(self, tasks: list[SynthesisTask],
                     streamed: set[str]) -> list[SynthesisResult | BaseException]:
        """After a replica died: run the batch once more on another replica, except
        cancelled tasks and streams that already sent audio."""
        import ray.exceptions as rex

        out: list[SynthesisResult | BaseException | None] = [None] * len(tasks)
        again = []
        for i, task in enumerate(tasks):
            if task.cancel.cancelled:
                out[i] = Cancelled(task.cancel.reason)
            elif task.task_id in streamed:
                out[i] = GenerationFailed(
                    "the replica generating this stream stopped (its process or node was "
                    "lost) after sending part of the audio; the stream ends here, "
                    "request it again")
            else:
                again.append(i)
        if again:
            retry = [tasks[i] for i in again]
            ok = await self._until(lambda: self._idle() is not None or self.state == "failed",
                                   RETRY_WAIT_S)
            slot = self._claim(retry) if ok else None
            if slot is None:
                results: list = [BackendUnavailable(
                    f"the replica running this request was lost and no other replica of "
                    f"'{self.name}' became ready: {self.error or 'restarting'}; retry "
                    "shortly", headers={"Retry-After": "5"})] * len(retry)
            else:
                try:
                    results = await self._call(slot, retry, streamed)
                except rex.RayActorError as exc:
                    self._lost(slot, exc)
                    results = [BackendUnavailable(
                        f"two replicas of '{self.name}' were lost running this request "
                        f"({_short(exc)}); retry shortly", headers={"Retry-After": "5"})
                    ] * len(retry)
                except Exception as exc:
                    log.exception("retry on replica %s-%d failed", self.name, slot.index)
                    results = [GenerationFailed(f"replica {self.name}-{slot.index} failed: "
                                                f"{_short(exc)}")] * len(retry)
                finally:
                    self._release(slot, len(retry))
            for i, result in zip(again, results, strict=True):
                out[i] = result
        return out  # type: ignore[return-value]

    def _lost(self, slot: ReplicaSlot, exc: BaseException) -> None:
        """A replica's actor died or became unreachable: Ray restarts it; reload it."""
        if slot.state == "loading":
            return
        slot.state, slot.error = "loading", f"restarting: {_short(exc)}"
        slot.restarts += 1
        slot.prompts.clear()
        log.warning("replica %s-%d lost: %s", self.name, slot.index, _short(exc))
        task = asyncio.create_task(self._load(slot), name=f"reload-{self.name}-{slot.index}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._notify()

    async def _call(self, slot: ReplicaSlot, tasks: list[SynthesisTask],
                    streamed: set[str]) -> list[SynthesisResult | BaseException]:
        """One batch on one replica, forwarding audio, progress and cancellation."""
        import ray.exceptions as rex

        # Hashing prompt audio (megabytes per voice) stays off the event loop.
        keys = await asyncio.to_thread(prompt_keys, tasks)
        by_id = {t.task_id: t for t in tasks}
        resend = False
        watcher = asyncio.create_task(self._forward_cancels(slot, tasks))
        try:
            for _ in range(2):
                payloads = [to_payload(t, key=k, send_prompt=k is not None and (
                    resend or k not in slot.prompts)) for t, k in zip(tasks, keys, strict=True)]
                slot.prompts_sent += len({p.prompt_key for p in payloads if p.prompt is not None})
                stream = slot.actor.generate.options(num_returns="streaming").remote(payloads)
                async for ref in stream:
                    try:
                        kind, data = await ref
                    except rex.RayTaskError as exc:  # the replica's code raised
                        cause = getattr(exc, "cause", None) or exc
                        return [GenerationFailed(f"replica {self.name}-{slot.index} failed: "
                                                 f"{cause}")] * len(tasks)
                    if kind == "missing":
                        resend = True
                        break
                    if kind == "events":
                        self._deliver(data, by_id, streamed)
                    elif kind == "results":
                        for t, k in zip(tasks, keys, strict=True):
                            if k is not None:
                                slot.prompts.put(k, None, transient=t.prompt.transient)
                        return [decode_outcome(o) for o in data]
            return [GenerationFailed(f"replica {self.name}-{slot.index} sent no result")
                    ] * len(tasks)
        except asyncio.CancelledError:
            for task in tasks:
                slot.actor.cancel.remote(task.task_id, "server stopping")
            raise
        finally:
            watcher.cancel()

    @staticmethod
    def _deliver(events: list[tuple], by_id: dict[str, SynthesisTask],
                 streamed: set[str]) -> None:
        for kind, task_id, *args in events:
            task = by_id.get(task_id)
            if task is None:
                continue
            try:
                if kind == "audio" and task.on_audio is not None:
                    streamed.add(task_id)
                    task.on_audio(*args)
                elif kind == "progress" and task.on_progress is not None:
                    task.on_progress(*args)
            except Exception:
                log.exception("%s callback of %s failed", kind, task_id)

    async def _forward_cancels(self, slot: ReplicaSlot, tasks: list[SynthesisTask]) -> None:
        """Tell the replica as soon as a task is cancelled here (its token is local)."""
        told: set[str] = set()
        while len(told) < len(tasks):
            for task in tasks:
                if task.cancel.cancelled and task.task_id not in told:
                    told.add(task.task_id)
                    slot.actor.cancel.remote(task.task_id, task.cancel.reason or "cancelled")
            await asyncio.sleep(CANCEL_POLL_S)


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a cluster that does not answer: Ray itself retries for minutes."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {hostport} ({exc.strerror or exc})") from None


def _splitter(futures: list[asyncio.Future], count: int):
    """A done-callback giving each of ``futures`` its entry of a batch call's results."""
    def split(done: asyncio.Task) -> None:
        if done.cancelled():
            results: list = [GenerationFailed("the batch was stopped")] * count
        elif done.exception() is not None:
            results = [done.exception()] * count
        else:
            results = done.result()
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)
    return split


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
