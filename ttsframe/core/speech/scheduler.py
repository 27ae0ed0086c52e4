"""The one path to a backend: a bounded queue, one worker thread per backend, batching.

Synchronous requests and asynchronous jobs both call :meth:`Scheduler.submit`, so neither
can bypass the queue. Each backend instance is owned by a single thread (Dia's model is
not safe to call concurrently); concurrency comes from batching, up to ``workers`` tasks
at once: a backend with a decoding loop (``Backend.continuous``) takes each task the
moment its loop has room and answers it the moment it ends; any other backend gets
compatible tasks together in one ``generate`` call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ttsframe.core.errors import (
    BackendUnavailable,
    CancelCause,
    Cancelled,
    NotFound,
    QueueFull,
    ShuttingDown,
)
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask

log = logging.getLogger("ttsframe.scheduler")

BackendState = Literal["loading", "ready", "failed"]


@dataclass
class Ticket:
    """A task in the scheduler: its future and timings."""

    task: SynthesisTask
    backend: str
    future: asyncio.Future[SynthesisResult]
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    progress: tuple[int, int] = (0, 0)
    # How many tasks shared the backend call that ran this one (the largest, for parts).
    batch_size: int = 0
    # Called on the event loop when the task starts generating (jobs record it).
    on_start: Callable[[Ticket], None] | None = None
    # A request split into several tasks (long text): one ticket per part, in order.
    # This ticket's future holds the joined result (see ``Scheduler.submit_parts``).
    parts: list[Ticket] = field(default_factory=list)
    # Checks the backend's result before the future holds it (``core/speech/quality``): may
    # queue retries of the task and returns the take to keep.
    review: Callable[[Ticket, SynthesisResult], Awaitable[SynthesisResult]] | None = None
    # The retry being generated for it under review (cancelled with it).
    retry: Ticket | None = None

    @property
    def status(self) -> str:
        if not self.future.done():
            return "processing" if self.started_at else "pending"
        exc = failure_of(self.future)
        if isinstance(exc, Cancelled):
            return "cancelled"
        return "failed" if exc else "completed"


def run_batch(name: str, backend: Backend,
              tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
    """One ``generate`` call on the thread that owns ``backend``: one entry per task.

    A crash fails this batch's culprit, never the worker: when the backend raises for the
    whole batch, each task runs again alone. Shared by local workers and cluster replicas.
    """
    try:
        results = backend.generate(tasks)
    except Exception as exc:
        log.exception("backend %s raised for a batch of %d", name, len(tasks))
        if len(tasks) == 1:
            return [exc]
        return [_retry_alone(backend, task, exc) for task in tasks]
    if len(results) != len(tasks):
        err = RuntimeError(f"backend {name} returned {len(results)} results "
                           f"for {len(tasks)} tasks")
        return [err] * len(tasks)
    return list(results)


def _retry_alone(backend: Backend, task: SynthesisTask,
                 batch_error: Exception) -> SynthesisResult | BaseException:
    """Run one task of a batch that raised on its own, so only the culprit fails.

    A cancelled task is not retried, nor a streaming one (its listener may already
    have audio from the failed call, which a second run would repeat).
    """
    if task.cancel.cancelled:
        return Cancelled(task.cancel.reason, cause=task.cancel.cause)
    if task.on_audio is not None:
        return batch_error
    try:
        (result,) = backend.generate([task])
    except Exception as exc:
        return exc
    return result


class BackendWorker:
    """Owns one backend on one thread: loads it, then runs its work.

    Every worker offers the scheduler the same interface (a pool of replicas too,
    ``ttsframe/cluster``): ``room`` and ``wait_room`` say how many tasks it can take
    now, and ``launch`` hands tasks over and returns one awaitable per task. A backend
    that batches per call gets a whole ``generate`` call when the worker is idle; a
    ``continuous`` backend runs its decoding loop (``Backend.serve``) on the thread for
    as long as the server runs, and tasks join it whenever it has room.
    """

    slots = 1

    def __init__(self, name: str, backend: Backend) -> None:
        self.name = name
        self.backend = backend
        self.state: BackendState = "loading"
        self.error: str | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"ttsframe-{name}")
        self.busy = 0  # tasks handed over and not answered yet
        self._room_changed = asyncio.Event()
        self._feed: _LoopFeed | None = None

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.backend.load()
        except Exception as exc:  # the server stays up and reports why
            self.state, self.error = "failed", str(exc) or type(exc).__name__
            log.error("backend %s failed to load: %s", self.name, self.error)
            return
        self.state = "ready"
        log.info("backend %s ready in %.1f s", self.name, time.perf_counter() - started)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        self.open()

    def open(self) -> None:
        """After loading: start a continuous backend's decoding loop on the thread."""
        if self.state == "ready" and self.backend.continuous and self._feed is None:
            self._feed = _LoopFeed(asyncio.get_running_loop(), self._answered)
            self._executor.submit(self._serve)
        self._room_changed.set()

    @property
    def continuous(self) -> bool:
        """Tasks join a running decoding loop (no batch keys, no batch window)."""
        return self._feed is not None

    def _serve(self) -> None:
        """The backend's decoding loop, on the worker's thread until shutdown. If it
        ever raises, what it held fails and it starts again."""
        feed = self._feed
        while not feed.closed:
            try:
                self.backend.serve(feed)
            except Exception as exc:
                log.exception("the decoding loop of %s failed", self.name)
                feed.fail_outstanding(exc)

    def room(self, limit: int) -> int:
        """How many tasks (of at most ``limit`` at once) it can take now."""
        if self.state != "ready":
            return limit if self.state == "failed" else 0  # failed: answered at once
        if self.continuous:
            return max(0, limit - self.busy)
        return 0 if self.busy else limit

    async def wait_room(self, limit: int) -> None:
        while self.room(limit) <= 0:
            self._room_changed.clear()
            await self._room_changed.wait()

    def launch(self, tasks: list[SynthesisTask]) -> tuple[str, list[Awaitable]]:
        """Hand ``tasks`` over; one awaitable per task, giving its result or error."""
        loop = asyncio.get_running_loop()
        self.busy += len(tasks)
        where = f"{self.name}-0"
        if self.state == "failed":
            self.busy -= len(tasks)
            return where, [_ready(loop, _failed_to_load(self.name, self.error)) for _ in tasks]
        if self._feed is not None:
            return where, [self._feed.put(task) for task in tasks]
        call = loop.run_in_executor(self._executor, self._generate, tasks)
        futures = [loop.create_future() for _ in tasks]

        def split(done: asyncio.Future) -> None:
            self._answered(len(tasks))
            if done.cancelled():  # the worker shut down before the call ran
                error: BaseException | None = _shutting_down()
            else:
                error = done.exception()
            results = [error] * len(tasks) if error is not None else done.result()
            for future, result in zip(futures, results, strict=True):
                future.set_result(result)

        call.add_done_callback(split)
        return where, futures

    def _answered(self, count: int = 1) -> None:
        """On the event loop: ``count`` tasks were answered, so there is room again."""
        self.busy -= count
        self._room_changed.set()

    def _generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        return run_batch(self.name, self.backend, tasks)

    def check_ready(self) -> None:
        if self.state == "loading":
            raise BackendUnavailable(
                f"backend '{self.name}' is still loading its model; retry shortly "
                "(GET /health shows progress)", headers={"Retry-After": "5"})
        if self.state == "failed":
            raise _failed_to_load(self.name, self.error)

    def loop_stats(self) -> dict[str, int]:
        """The backend's decoding loop (``Backend.loop_stats``); {} without one."""
        if not self.continuous:
            return {}
        try:
            return dict(self.backend.loop_stats())
        except Exception:
            log.exception("loop_stats of %s failed", self.name)
            return {}

    def shutdown(self) -> None:
        if self._feed is not None:
            self._feed.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            self.backend.close()
        except Exception:
            log.exception("backend %s failed to close", self.name)


def _failed_to_load(name: str, error: str | None) -> BackendUnavailable:
    return BackendUnavailable(
        f"backend '{name}' failed to load: {error}. Fix the [plugins] section of "
        "ttsframe.toml (see GET /health) and restart the server")


def _ready(loop: asyncio.AbstractEventLoop, value: object) -> asyncio.Future:
    future = loop.create_future()
    future.set_result(value)
    return future


class _LoopFeed:
    """The ``TaskFeed`` between a worker and its backend's decoding loop: tasks go in
    on the event loop, come out on the worker's thread, and their answers go back to
    the event loop as soon as each is given."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 answered: Callable[[int], None]) -> None:
        self._loop, self._answered = loop, answered
        self._cond = threading.Condition()
        self._waiting: list[SynthesisTask] = []
        self._futures: dict[int, asyncio.Future] = {}  # id(task) -> its outcome
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, task: SynthesisTask) -> asyncio.Future:
        future = self._loop.create_future()
        with self._cond:
            self._futures[id(task)] = future
            self._waiting.append(task)
            self._cond.notify()
        return future

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        with self._cond:
            while block and not self._waiting and not self._closed:
                self._cond.wait()
            taken, self._waiting[:limit] = self._waiting[:limit], []
            return taken

    def done(self, task: SynthesisTask, outcome) -> None:
        with self._cond:
            future = self._futures.pop(id(task), None)
        if future is not None:
            self._loop.call_soon_threadsafe(self._settle, future, outcome)

    def _settle(self, future: asyncio.Future, outcome) -> None:
        if not future.done():
            future.set_result(outcome)
        self._answered(1)

    def fail_outstanding(self, error: BaseException) -> None:
        """After the loop raised: every task handed over and not answered fails."""
        with self._cond:
            futures, self._futures, self._waiting = list(self._futures.values()), {}, []
        for future in futures:
            self._loop.call_soon_threadsafe(self._settle, future, error)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Scheduler:
    """Bounded queue in front of the backend workers; batches compatible tasks."""

    def __init__(self, workers: dict[str, BackendWorker], *, queue_size: int,
                 max_batch: int, batch_wait_s: float) -> None:
        self.workers = workers
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self._pending: dict[str, list[Ticket]] = {name: [] for name in workers}
        self._running: dict[str, Ticket] = {}
        self._tickets: dict[str, Ticket] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._loops: list[asyncio.Task] = []
        self._lock = threading.Lock()
        self._last_arrival: dict[str, float] = {name: 0.0 for name in workers}
        # Requests on their way to submit: token -> when to stop waiting for it.
        self._announced: dict[int, float] = {}
        self._next_token = 0
        # Joins of split requests and, for a pool of replicas, the batches it runs.
        self._background: set[asyncio.Task] = set()
        self.completed = 0
        self.failed = 0
        self.closing = False  # a stop signal arrived: no new work (see ``close``)
        # Called on the event loop after each backend call with (backend, tickets,
        # results, seconds); the metrics count batches with it.
        self.on_batch: Callable[[str, list[Ticket], list, float], None] | None = None
        self._grace_ends = 0.0

    async def start(self) -> None:
        for name, worker in self.workers.items():
            self._wakeups[name] = asyncio.Event()
            self._loops.append(asyncio.create_task(worker.start(), name=f"load-{name}"))
            self._loops.append(asyncio.create_task(self._dispatch(name), name=f"run-{name}"))

    async def stop(self) -> None:
        for task in [*self._loops, *self._background]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._background, return_exceptions=True)
        for worker in self.workers.values():
            worker.shutdown()

    def close(self, grace_s: float) -> None:
        """Stop taking work, at the first stop signal: new requests and every queued task
        fail at once with ``ShuttingDown`` (503, so clients retry elsewhere or later),
        and tasks already generating get ``grace_s`` to finish before they are stopped
        between decoding steps and fail alike. Jobs that fail this way stay pending."""
        if self.closing:
            return
        self.closing = True
        log.info("stopping: no new work; %d generating may finish within %.0f s",
                 len(self._running), grace_s)
        for queue in self._pending.values():
            for ticket in queue:
                self._fail_for_shutdown(ticket)
            queue.clear()
        loop = asyncio.get_running_loop()
        self._grace_ends = loop.time() + grace_s
        loop.call_later(grace_s, self._stop_running)

    async def drain(self) -> None:
        """After ``close``: wait until nothing is generating, each task having finished
        or been stopped at the end of the grace period (plus a second for a backend to
        notice; one that never looks at its cancel token is not waited for longer)."""
        loop = asyncio.get_running_loop()
        while self._running and loop.time() < self._grace_ends + 1.0:
            await asyncio.sleep(0.05)

    def _stop_running(self) -> None:
        for ticket in list(self._running.values()):
            ticket.task.cancel.cancel("server stopping", CancelCause.SHUTDOWN)
            self._fail_for_shutdown(ticket)  # its result, if it still comes, is dropped

    def _fail_for_shutdown(self, ticket: Ticket) -> None:
        """Fail the ticket with ``ShuttingDown`` (503) and stop tracking it."""
        _complete_future(ticket.future, error=_shutting_down())
        self._forget(ticket)

    @property
    def pending_count(self) -> int:
        return sum(len(q) for q in self._pending.values())

    def queued(self, backend: str) -> int:
        """Tasks waiting for ``backend``."""
        return len(self._pending[backend])

    def _check_accepting(self, backend: str) -> None:
        """404 for an unknown backend, 503 while stopping or while it is not ready."""
        worker = self.workers.get(backend)
        if worker is None:
            raise NotFound(f"Model '{backend}' not found")
        if self.closing:
            raise _shutting_down()
        worker.check_ready()

    def submit(self, backend: str, task: SynthesisTask, review=None) -> Ticket:
        """Queue a task; raise ``QueueFull`` (429) when the bounded queue is full.
        ``review`` (see ``Ticket.review``) settles its result."""
        self._check_accepting(backend)
        if self.pending_count >= self.queue_size:
            raise QueueFull(
                f"the generation queue is full ({self.queue_size} pending); retry later "
                "or raise generation.queue_size", headers={"Retry-After": "2"})
        ticket = Ticket(task, backend, asyncio.get_running_loop().create_future(),
                        review=review)
        self._enqueue(ticket)
        return ticket

    def submit_parts(self, backend: str, task: SynthesisTask, parts: list[SynthesisTask],
                     join: Callable[[list[SynthesisResult]], SynthesisResult],
                     reviews: list | None = None, *, hold_rest: bool = False) -> Ticket:
        """Queue a request made of several tasks (the chunks of a long text) as one ticket.

        Each part is queued as its own task, so parts batch with each other and with other
        requests like any task. The returned ticket stands for the request: it starts
        with its first part, cancelling it cancels every part, the first part that fails
        fails it (and cancels the rest), and its future holds ``join(results)`` (computed
        in a thread) once every part is done. An empty queue always accepts a request,
        however many parts it has.

        With ``hold_rest``, only the first part is queued now; the rest wait for the
        caller's :meth:`release_rest` (a ``SpeechRun`` calls it when the first part is
        done, having made the later tasks' prompt from its audio) and are then queued
        together, or end without running if the first part failed, was cancelled or the
        server is stopping. ``reviews`` are the parts' ``Ticket.review``, in order.
        """
        self._check_accepting(backend)
        pending = self.pending_count
        if pending and pending + len(parts) > self.queue_size:
            raise QueueFull(
                f"the generation queue is full ({pending} pending; this request needs "
                f"{len(parts)} places); retry later or raise generation.queue_size",
                headers={"Retry-After": "2"})
        loop = asyncio.get_running_loop()
        ticket = Ticket(task, backend, loop.create_future())
        for k, part in enumerate(parts):
            ticket.parts.append(Ticket(part, backend, loop.create_future(),
                                       on_start=_start_parent(ticket),
                                       review=reviews[k] if reviews else None))
        self._tickets[task.task_id] = ticket
        for k, part_ticket in enumerate(ticket.parts):
            if not hold_rest or k == 0:
                self._enqueue(part_ticket)
            else:  # held back until the first part is done (``release_rest``)
                self._tickets[part_ticket.task.task_id] = part_ticket
        joiner = asyncio.create_task(self._join_parts(ticket, join),
                                     name=f"join-{task.task_id}")
        self._background.add(joiner)
        joiner.add_done_callback(self._background.discard)
        return ticket

    def _enqueue(self, ticket: Ticket) -> None:
        self._tickets[ticket.task.task_id] = ticket
        self._pending[ticket.backend].append(ticket)
        self._last_arrival[ticket.backend] = time.monotonic()
        self._wakeups[ticket.backend].set()

    async def _join_parts(self, ticket: Ticket,
                          join: Callable[[list[SynthesisResult]], SynthesisResult]) -> None:
        futures = [part.future for part in ticket.parts]
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
            failed = next((f for f in futures if f.done() and failure_of(f) is not None), None)
            if failed is not None:
                for part in ticket.parts:
                    self.cancel(part.task.task_id, "another part of this request failed",
                                CancelCause.PART_FAILED)
                error = failure_of(failed)
                ticket.finished_at = time.time()
                _complete_future(ticket.future, error=error)
                return
            results = [f.result() for f in futures]
            ticket.finished_at = max(p.finished_at or 0.0 for p in ticket.parts) or None
            ticket.batch_size = max(p.batch_size for p in ticket.parts)
            joined = await asyncio.get_running_loop().run_in_executor(None, join, results)
            _complete_future(ticket.future, result=joined)
        except asyncio.CancelledError:
            for part in ticket.parts:
                self.cancel(part.task.task_id, "server stopping", CancelCause.SHUTDOWN)
                _complete_future(part.future, error=Cancelled(  # held ones too
                    "server stopping", cause=CancelCause.SHUTDOWN))
            _complete_future(ticket.future, error=Cancelled("server stopping",
                                                            cause=CancelCause.SHUTDOWN))
            raise
        except Exception as exc:  # join failed
            log.exception("joining the parts of %s failed", ticket.task.task_id)
            _complete_future(ticket.future, error=exc)
        finally:
            self._forget(ticket)

    def release_rest(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """Queue the parts held back by ``submit_parts(hold_rest=True)``, once the first
        is done. They end without running instead when ``error`` is given, when the first
        part failed or was cancelled (its error), when the request was cancelled, or when
        the server is stopping (``ShuttingDown``)."""
        first, rest = ticket.parts[0], ticket.parts[1:]
        if error is None and first.future.done():
            error = failure_of(first.future)
        if error is None and self.closing:
            error = _shutting_down()
        for part in rest:
            if part.future.done():
                continue
            if error is None and not part.task.cancel.cancelled:
                self._enqueue(part)
                continue
            _complete_future(part.future, error=error or Cancelled(
                part.task.cancel.reason, cause=part.task.cancel.cause))
            self._forget(part)

    def announce_request(self, ttl_s: float = 2.0) -> int:
        """Announce a request on its way to ``submit`` (being validated, its voice prompt
        loading, its job row being written): an open batch window waits for it rather
        than start without it. Call :meth:`end_announcement` with the token once it is
        submitted or given up; a token never returned stops counting after ``ttl_s``."""
        self._next_token += 1
        self._announced[self._next_token] = time.monotonic() + ttl_s
        return self._next_token

    def end_announcement(self, token: int | None) -> None:
        """The announced request was submitted or given up: windows stop waiting for it."""
        if token is not None:
            self._announced.pop(token, None)

    @contextmanager
    def announcing_request(self) -> Iterator[None]:
        """:meth:`announce_request` for the duration of a block."""
        token = self.announce_request()
        try:
            yield
        finally:
            self.end_announcement(token)

    @property
    def announced_requests(self) -> int:
        """How many announced requests have not arrived yet (expired ones dropped)."""
        now = time.monotonic()
        for token in [t for t, until in self._announced.items() if until <= now]:
            del self._announced[token]
        return len(self._announced)

    def get(self, task_id: str) -> Ticket | None:
        return self._tickets.get(task_id)

    def cancel(self, task_id: str, reason: str = "cancelled by request",
               cause: CancelCause = CancelCause.REQUEST) -> bool:
        """Cancel a pending task at once, or ask a running one to stop between steps.
        ``reason`` is for people (logs, job records), ``cause`` for the metrics."""
        ticket = self._tickets.get(task_id)
        if ticket is None or ticket.future.done():
            return False
        ticket.task.cancel.cancel(reason, cause)
        for part in ticket.parts:
            self.cancel(part.task.task_id, reason, cause)
        if ticket.retry is not None:
            self.cancel(ticket.retry.task.task_id, reason, cause)
        queue = self._pending[ticket.backend]
        if ticket in queue:
            queue.remove(ticket)
            ticket.future.set_exception(Cancelled(reason, cause=ticket.task.cancel.cause))
            ticket.future.exception()  # mark retrieved
            self._forget(ticket)
        return True

    def _forget(self, ticket: Ticket) -> None:
        self._tickets.pop(ticket.task.task_id, None)

    def batch_key(self, backend: str, ticket: Ticket) -> Hashable:
        return self.workers[backend].backend.batch_key(ticket.task)

    def batch_limit(self, backend: str) -> int:
        """How many tasks one generate call of ``backend`` may hold."""
        caps = self.workers[backend].backend.capabilities
        return min(self.max_batch, caps.max_batch_size if caps.supports_batching else 1)

    def _take_batch(self, backend: str, room: int) -> list[Ticket]:
        """The oldest task and, for a backend that batches per call, the next ones
        with its batch key; for a decoding loop, simply the oldest ``room`` tasks."""
        queue = self._pending[backend]
        limit = max(1, min(room, self.batch_limit(backend)))
        if self.workers[backend].continuous:
            batch, queue[:limit] = queue[:limit], []
            return batch
        first = queue.pop(0)
        batch = [first]
        key = self.batch_key(backend, first)
        for ticket in list(queue):
            if len(batch) >= limit:
                break
            if self.batch_key(backend, ticket) == key:
                queue.remove(ticket)
                batch.append(ticket)
        return batch

    async def _dispatch(self, backend: str) -> None:
        """Hand queued tasks to the worker whenever it has room, oldest first."""
        worker = self.workers[backend]
        wake = self._wakeups[backend]
        while True:
            if not self._pending[backend]:
                wake.clear()
                await wake.wait()
                continue
            limit = self.batch_limit(backend)  # PUT /config may change it
            await worker.wait_room(limit)
            if not worker.continuous:  # a short window lets a call fill up
                await self._hold_batch_window(backend)
            if not self._pending[backend]:
                continue
            batch = self._take_batch(backend, worker.room(limit))
            where, outcomes = worker.launch([t.task for t in batch])
            now = time.time()
            for ticket in batch:
                ticket.started_at = now
                ticket.worker = where
                ticket.batch_size = len(batch)
                self._running[ticket.task.task_id] = ticket
                if ticket.on_start is not None:
                    try:
                        ticket.on_start(ticket)
                    except Exception:
                        log.exception("on_start callback of %s failed", ticket.task.task_id)
            runner = asyncio.create_task(self._deliver(backend, batch, outcomes),
                                         name=f"batch-{where}")
            self._background.add(runner)
            runner.add_done_callback(self._background.discard)

    async def _deliver(self, backend: str, batch: list[Ticket],
                       outcomes: list[Awaitable]) -> None:
        """Complete each ticket with its result or error as soon as it comes (a
        cancelled task's error is ``Cancelled``), then report the hand-over."""
        called = time.perf_counter()

        async def one(ticket: Ticket, outcome: Awaitable):
            result = await outcome
            self._complete(ticket, result)
            return result

        results = await asyncio.gather(*(one(t, o) for t, o in zip(batch, outcomes,
                                                                    strict=True)))
        if self.on_batch is not None:
            try:
                self.on_batch(backend, batch, results, time.perf_counter() - called)
            except Exception:
                log.exception("on_batch callback failed")

    def _complete(self, ticket: Ticket, result: SynthesisResult | BaseException) -> None:
        ticket.finished_at = time.time()
        if isinstance(result, SynthesisResult) and result.info.get("batch_size"):
            ticket.batch_size = int(result.info["batch_size"])  # a loop's rows, at most
        self._running.pop(ticket.task.task_id, None)
        if ticket.future.done():
            self._forget(ticket)
            return
        if ticket.review is not None and not isinstance(result, BaseException):
            # The quality stage decides which take completes the ticket (``_settle``).
            self.completed += 1
            settling = asyncio.create_task(self._settle(ticket, result),
                                           name=f"review-{ticket.task.task_id}")
            self._background.add(settling)
            settling.add_done_callback(self._background.discard)
            return
        self._forget(ticket)
        if isinstance(result, BaseException):
            token = ticket.task.cancel
            if token.cancelled and not isinstance(result, Cancelled):
                result = Cancelled(token.reason, cause=token.cause)
            elif isinstance(result, Cancelled) and token.cancelled:
                # Why is the core's to say: a backend may give the words only, and
                # a replica's error comes back without its cause.
                result.cause = token.cause
            self.failed += not isinstance(result, Cancelled)
            ticket.future.set_exception(result)
            ticket.future.exception()
        else:
            self.completed += 1
            ticket.future.set_result(result)

    async def _settle(self, ticket: Ticket, result: SynthesisResult) -> None:
        """Complete a reviewed ticket with the take its review keeps (still known to
        ``cancel`` meanwhile, so a retry stops with it)."""
        assert ticket.review is not None
        try:
            kept = await ticket.review(ticket, result)
        except asyncio.CancelledError:
            _complete_future(ticket.future, error=Cancelled("server stopping",
                                                            cause=CancelCause.SHUTDOWN))
            raise
        except Exception as exc:
            token = ticket.task.cancel
            if token.cancelled and not isinstance(exc, Cancelled):
                exc = Cancelled(token.reason, cause=token.cause)
            elif isinstance(exc, Cancelled) and token.cancelled:
                exc.cause = token.cause
            _complete_future(ticket.future, error=exc)
        else:
            ticket.finished_at = time.time()
            _complete_future(ticket.future, result=kept)
        finally:
            self._forget(ticket)

    async def _hold_batch_window(self, backend: str) -> None:
        """Let close arrivals join the batch: wait until it is full, or ``batch_wait_s``
        has passed, or no request is on its way (``announce_request``) and none has been
        queued for a tenth of the window.

        A lone request thus waits only that quiet tenth (2 ms by default), while a burst
        keeps the window open as long as its requests keep coming, up to the whole window.
        """
        window = self.batch_wait_s
        if not window:
            return
        quiet = window / 10
        queue = self._pending[backend]
        opened = time.monotonic()
        while queue and len(queue) < self.batch_limit(backend):
            now = time.monotonic()
            since_last = now - self._last_arrival[backend]
            left = window - (now - opened)
            if left <= 0 or (since_last >= quiet and not self.announced_requests):
                return
            await asyncio.sleep(min(max(quiet - since_last, quiet / 4), left))

    def stats(self) -> dict[str, int]:
        """Counts of tasks (one per generation: a long text is several), since start;
        ``/health`` shows them. Jobs are counted by ``JobService.stats``."""
        return {
            "queued_tasks": self.pending_count,
            "running_tasks": len(self._running),
            "completed_tasks": self.completed,
            "failed_tasks": self.failed,
            # How many requests may be generating at once: one batch per backend replica.
            "total_workers": sum(self.batch_limit(name) * worker.slots
                                 for name, worker in self.workers.items()),
            "active_workers": sum(w.busy for w in self.workers.values()),
        }

    def loop_stats(self) -> dict[str, int]:
        """The decoding loops of continuous backends, summed: rows running in them,
        rows waiting to join, and joins since start (into a loop that had rows)."""
        totals = {"loop_rows": 0, "loop_waiting": 0, "loop_joins": 0,
                  "loop_joins_while_running": 0}
        for worker in self.workers.values():
            stats = worker.loop_stats()
            totals["loop_rows"] += stats.get("rows", 0)
            totals["loop_waiting"] += stats.get("waiting", 0)
            totals["loop_joins"] += stats.get("joins", 0)
            totals["loop_joins_while_running"] += stats.get("joins_while_running", 0)
        return totals


def _shutting_down() -> ShuttingDown:
    return ShuttingDown("the server is shutting down and takes no new work; retry in a few "
                        "seconds", headers={"Retry-After": "5"})


def _start_parent(parent: Ticket) -> Callable[[Ticket], None]:
    """``on_start`` of a part: the request starts with its first part."""
    def started(part: Ticket) -> None:
        if parent.started_at is None:
            parent.started_at, parent.worker = part.started_at, part.worker
            if parent.on_start is not None:
                parent.on_start(parent)
    return started


def _complete_future(future: asyncio.Future, *, result: object = None,
                     error: BaseException | None = None) -> None:
    """Set the result or the error, unless the future is done already (the first
    outcome wins: a cancel or a shutdown may have completed it first)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()  # mark retrieved: the caller may have gone away
    else:
        future.set_result(result)


def failure_of(future: asyncio.Future) -> BaseException | None:
    """The error a done future holds (a cancelled one counts as ``Cancelled``)."""
    if future.cancelled():
        return Cancelled("cancelled")
    return future.exception()
