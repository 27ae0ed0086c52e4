"""Prometheus metrics of one server: what speech costs, how busy it is, what fails.

``Metrics`` owns a registry built at startup and handed to the app (never the process-wide
default registry), so two apps in one process count apart. Events are counted where they
happen, at the cost of a label lookup and an increment: generations that end (an observer
of ``SpeechService``), backend calls (``Scheduler.on_batch``) and speech replies (the
HTTP layer). What is a state rather than an event (queue depth, model state, jobs, the
data directory) is read only when ``/metrics`` is scraped. ``docs/observability.md``
lists every metric; a test keeps that table and this module in step.

Labels: ``backend`` is the backend's registered name; the per-call metrics (batch size,
decoding rate) also carry ``replica``, the worker that ran the call (``dia-0``, ``dia-1``,
... under the Ray engine; ``dia-0`` for the local one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ttsframe.core.errors import CancelCause, Cancelled
from ttsframe.core.interfaces.synthesis import CancelToken, SynthesisResult

if TYPE_CHECKING:
    from ttsframe.core.speech.prepared import GenerationEvent
    from ttsframe.core.speech.scheduler import Scheduler, Ticket

# Seconds: from a few milliseconds (a cached short reply) to minutes (a long text on CPU).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                   300.0)
RTF_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
COUNT_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
STEP_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 86, 100, 200, 500, 1000, 2000, 5000)
MODEL_STATES = ("loading", "ready", "failed")
JOB_STATES = ("pending", "processing", "completed", "failed", "cancelled")


def cancel_reason(error: BaseException, token: CancelToken | None = None) -> str:
    """Why a generation stopped early, a ``CancelCause`` value: the error's own cause,
    else the cause its task's ``token`` was cancelled with; the words are never read."""
    cause = error.cause if isinstance(error, Cancelled) else None
    if cause is None and token is not None and token.cancelled:
        cause = token.cause
    if cause is None and isinstance(error, asyncio.CancelledError):
        cause = CancelCause.CLIENT_DISCONNECT  # a buffered request whose client went away
    return str(cause or CancelCause.REQUEST)


class Labelled:
    """A labelled metric whose children are looked up once per label values
    (prometheus-client's ``labels`` converts every value and takes a lock on each call).
    Label values here come from small fixed sets, so the cache stays small."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple, Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The server's metrics, in its own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.speech_requests = Labelled(Counter(
            "ttsframe_speech_requests", "Speech requests answered, by outcome",
            ["route", "backend", "format", "mode", "status_class"], registry=r))
        self.speech_failures = Labelled(Counter(
            "ttsframe_speech_failures", "Speech requests that failed, by error kind",
            ["route", "backend", "kind"], registry=r))
        self.time_to_first_audio = Labelled(Histogram(
            "ttsframe_time_to_first_audio_seconds",
            "From the request to its first audio bytes (streamed) or its whole reply",
            ["backend", "route", "mode"], buckets=LATENCY_BUCKETS, registry=r))
        self.generation_time = Labelled(Histogram(
            "ttsframe_generation_seconds", "Generating time of a request (all its chunks)",
            ["backend"], buckets=LATENCY_BUCKETS, registry=r))
        self.queue_wait = Labelled(Histogram(
            "ttsframe_queue_wait_seconds", "Time a request waited in the queue",
            ["backend"], buckets=LATENCY_BUCKETS, registry=r))
        self.realtime_factor = Labelled(Histogram(
            "ttsframe_realtime_factor",
            "Seconds of audio per second of generating, per request (above 1: faster "
            "than real time)", ["backend"], buckets=RTF_BUCKETS, registry=r))
        self.batch_size = Labelled(Histogram(
            "ttsframe_batch_size", "Tasks per backend call", ["backend", "replica"],
            buckets=COUNT_BUCKETS, registry=r))
        self.decoding_steps_rate = Labelled(Histogram(
            "ttsframe_decoding_steps_per_second",
            "Decoding steps per second of a backend call (its longest row's steps)",
            ["backend", "replica"], buckets=STEP_RATE_BUCKETS, registry=r))
        self.chunks = Labelled(Histogram(
            "ttsframe_chunks_per_request", "Text chunks a request was split into",
            ["backend"], buckets=COUNT_BUCKETS, registry=r))
        self.generations = Labelled(Counter(
            "ttsframe_generations", "Generations that ended, by outcome",
            ["backend", "outcome"], registry=r))
        self.cancellations = Labelled(Counter(
            "ttsframe_cancellations", "Generations stopped early, by reason",
            ["backend", "reason"], registry=r))
        self.budget_limited = Labelled(Counter(
            "ttsframe_budget_limited_generations",
            "Generations whose speech was cut by max_tokens (no natural end)",
            ["backend"], registry=r))
        self.quality_failed = Labelled(Counter(
            "ttsframe_quality_checks_failed",
            "Takes that failed a quality check, by check (a take failing two counts twice)",
            ["backend", "check"], registry=r))
        self.quality_retries = Labelled(Counter(
            "ttsframe_quality_retries",
            "Takes generated again because a quality check failed", ["backend"], registry=r))
        self.audio_bytes = Labelled(Counter(
            "ttsframe_audio_bytes", "Encoded audio bytes produced",
            ["backend", "format"], registry=r))
        self.audio_seconds = Labelled(Counter(
            "ttsframe_audio_seconds", "Seconds of audio produced", ["backend"], registry=r))
        self.live_sessions = Labelled(Counter(
            "ttsframe_live_sessions", "Live sessions that ended, by outcome",
            ["outcome"], registry=r))
        self.live_segments = Counter(
            "ttsframe_live_segments", "Segments live sessions released for speaking",
            registry=r)
        self.live_first_audio = Histogram(
            "ttsframe_live_segment_first_audio_seconds",
            "From a live segment's release to its first audio", buckets=LATENCY_BUCKETS,
            registry=r)
        self.state = LiveState()
        r.register(self.state)

    def watch(self, scheduler: Scheduler, streams: dict[str, int], data_dir: Path,
              job_counts: Callable[[], Any]) -> None:
        """What the scrape-time gauges read: the scheduler (queue, batches, model state,
        backends' prompt caches), the open streams per backend, the data directory and
        the job counts (awaited)."""
        self.state.scheduler = scheduler
        self.state.streams = streams
        self.state.data_dir = data_dir
        self.state.job_counts = job_counts

    def watch_live(self, live: Any) -> None:
        """Count the live sessions' events (``LiveSessions`` hooks) and read how many
        are open at scrape time."""
        live.on_session_end = lambda outcome: self.live_sessions.labels(outcome).inc()
        live.on_segment_released = self.live_segments.inc
        live.on_first_audio = self.live_first_audio.observe
        self.state.live = live

    def check_failed(self, backend: str, check: str) -> None:
        """A take failed ``check`` (``QualityStage.on_failed``)."""
        self.quality_failed.labels(backend, check).inc()

    def retried(self, backend: str) -> None:
        """A take is generated again (``QualityStage.on_retry``)."""
        self.quality_retries.labels(backend).inc()

    async def refresh(self) -> None:
        """Read what needs the database or the disk, before a scrape is answered."""
        await self.state.refresh()

    # -- events ---------------------------------------------------------------------

    def batch_done(self, backend: str, tickets: list[Ticket],
                   results: list[SynthesisResult | BaseException], seconds: float) -> None:
        """One backend call returned (``Scheduler.on_batch``)."""
        # The worker that ran the call: "<backend>-<n>", one per replica of a cluster
        # engine ("<backend>-0" for the local one).
        replica = (tickets[0].worker if tickets else None) or f"{backend}-0"
        self.batch_size.labels(backend, replica).observe(len(tickets))
        done = [r for r in results if isinstance(r, SynthesisResult)]
        steps = max((r.info.get("steps", r.tokens) for r in done), default=0)
        if steps and seconds > 0:
            self.decoding_steps_rate.labels(backend, replica).observe(steps / seconds)
        limited = sum(1 for r in done if r.info.get("budget_limited"))
        if limited:
            self.budget_limited.labels(backend).inc(limited)

    async def generation_ended(self, event: GenerationEvent) -> None:
        """A ``SpeechService`` observer: one generation ended, however it ended."""
        backend, ticket = event.prepared.backend, event.ticket
        if ticket.started_at is not None:
            self.queue_wait.labels(backend).observe(ticket.started_at - ticket.submitted_at)
        generating = None
        if ticket.started_at is not None and ticket.finished_at is not None:
            generating = ticket.finished_at - ticket.started_at
            self.generation_time.labels(backend).observe(generating)
        output, error = event.output, event.error
        sent = event.streamed_bytes if event.streamed_bytes is not None else (
            len(output.audio) if output is not None else 0)
        if sent:
            fmt = event.prepared.request.response_format.lower()
            self.audio_bytes.labels(backend, fmt).inc(sent)
        if output is not None:
            self.generations.labels(backend, "completed").inc()
            self.chunks.labels(backend).observe(max(1, len(event.prepared.chunks)))
            self.audio_seconds.labels(backend).inc(output.duration_s)
            if generating:
                self.realtime_factor.labels(backend).observe(output.duration_s / generating)
        elif isinstance(error, Cancelled | asyncio.CancelledError):
            self.generations.labels(backend, "cancelled").inc()
            self.cancellations.labels(backend, cancel_reason(error, ticket.task.cancel)).inc()
        else:
            self.generations.labels(backend, "failed").inc()


class LiveState(Collector):
    """Gauges read at scrape time from the objects that hold the state."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.streams: dict[str, int] = {}
        self.data_dir: Path | None = None
        self.job_counts: Callable[[], Any] | None = None
        self.live: Any = None  # LiveSessions
        self._jobs: dict[str, int] = {}
        self._data_bytes = 0

    async def refresh(self) -> None:
        if self.job_counts is not None:
            # The database closed (stopping): the last counts stand.
            with contextlib.suppress(Exception):
                self._jobs = await self.job_counts()
        if self.data_dir is not None:
            self._data_bytes = await anyio.to_thread.run_sync(tree_bytes, self.data_dir)

    def describe(self) -> Iterable:
        return []  # collected fresh each scrape; nothing to check at registration

    def collect(self) -> Iterator:
        sched = self.scheduler
        if sched is not None:
            depth = GaugeMetricFamily("ttsframe_queue_depth", "Tasks waiting in the queue",
                                      labels=["backend"])
            running = GaugeMetricFamily("ttsframe_running_batches",
                                        "Backend calls generating now", labels=["backend"])
            state = GaugeMetricFamily(
                "ttsframe_model_state", "1 for the state each backend's model is in",
                labels=["backend", "state"])
            hits = CounterMetricFamily("ttsframe_prompt_cache_hits",
                                       "Voice prompts found encoded in the backend's cache",
                                       labels=["backend"])
            misses = CounterMetricFamily("ttsframe_prompt_cache_misses",
                                         "Voice prompts the backend had to encode",
                                         labels=["backend"])
            loop_rows = GaugeMetricFamily(
                "ttsframe_loop_rows", "Requests in a backend's decoding loop, by state",
                labels=["backend", "state"])
            loop_joins = CounterMetricFamily(
                "ttsframe_loop_joins", "Requests that joined a backend's decoding loop",
                labels=["backend", "into"])
            for name, worker in sched.workers.items():
                depth.add_metric([name], sched.queued(name))
                running.add_metric([name], 1 if worker.busy else 0)
                loop = worker.loop_stats()
                if loop:
                    loop_rows.add_metric([name, "running"], loop.get("rows", 0))
                    loop_rows.add_metric([name, "waiting"], loop.get("waiting", 0))
                    joins, running_joins = loop.get("joins", 0), loop.get("joins_while_running", 0)
                    loop_joins.add_metric([name, "idle"], joins - running_joins)
                    loop_joins.add_metric([name, "running"], running_joins)
                for s in MODEL_STATES:
                    state.add_metric([name, s], 1 if worker.state == s else 0)
                cache = _prompt_cache(worker)
                if cache is not None:
                    hits.add_metric([name], cache.get("hits", 0))
                    misses.add_metric([name], cache.get("misses", 0))
            capacity = GaugeMetricFamily("ttsframe_queue_capacity",
                                         "Tasks the queue holds before answering 429",
                                         value=sched.queue_size)
            yield from (depth, running, state, hits, misses, capacity, loop_rows, loop_joins)
        streams = GaugeMetricFamily("ttsframe_active_streams",
                                    "Streamed replies being sent now", labels=["backend"])
        for name, count in self.streams.items():
            streams.add_metric([name], count)
        yield streams
        if self.live is not None:
            yield GaugeMetricFamily("ttsframe_live_sessions_open",
                                    "Live sessions open now (a context counts as one)",
                                    value=len(self.live.open))
        jobs = GaugeMetricFamily("ttsframe_jobs", "Asynchronous jobs stored, by state",
                                 labels=["state"])
        for s in JOB_STATES:
            jobs.add_metric([s], self._jobs.get(s, 0))
        yield jobs
        yield GaugeMetricFamily("ttsframe_data_dir_bytes",
                                "Bytes of files under the data directory",
                                value=self._data_bytes)


def _prompt_cache(worker: Any) -> dict | None:
    """A backend that keeps encoded prompts reports ``prompt_cache: {hits, misses}`` in
    ``describe()`` (Dia does); read only once it is ready."""
    if worker.state != "ready":
        return None
    try:
        cache = worker.backend.describe().get("prompt_cache")
    except Exception:
        return None
    return cache if isinstance(cache, dict) and "hits" in cache else None


def tree_bytes(root: Path) -> int:
    """Total size of the regular files under ``root`` (symlinks not followed)."""
    total = 0
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # removed while we looked
        except OSError:
            continue
    return total


def status_class(status: int) -> str:
    return f"{status // 100}xx"
