"""One request's generation: a ``SpeechRun``, from the queue to its end-of-run report.

A run is made from a prepared request (``SpeechService.prepare``) and started once
(:meth:`SpeechRun.start`: its tasks are queued, 429/503 raised there). Then its caller
awaits the whole reply (:meth:`SpeechRun.output`, buffered replies), iterates its stream
(:meth:`SpeechRun.open`, streamed replies and live segments), or stores it as a job
(``JobService``: :meth:`SpeechRun.whole`, then :meth:`SpeechRun.finish` once the file is
written). The run owns the request's ticket, its stream, its cancellation
(:meth:`SpeechRun.cancel`), its progress, the voice continuity of a long text (the later
chunks are queued once the first is done, with its audio as their prompt) and exactly one
``GenerationEvent`` to the observers, however it ends.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
import numpy as np

from ttsframe.core.errors import CancelCause, Cancelled, cause_of_stop
from ttsframe.core.interfaces.speech_types import SpeechOutput
from ttsframe.core.interfaces.synthesis import SynthesisResult, SynthesisTask
from ttsframe.core.speech.captions import caption_text, captions_of
from ttsframe.core.speech.chunking import continue_voice, part_tasks
from ttsframe.core.speech.output_pipeline import OutputPipeline
from ttsframe.core.speech.prepared import GenerationEvent, PreparedSpeech
from ttsframe.core.speech.quality import PartReview, quality_header, quality_summary
from ttsframe.core.speech.scheduler import Ticket
from ttsframe.core.speech.stream import SpeechStream

if TYPE_CHECKING:
    from ttsframe.core.config.settings import Settings
    from ttsframe.core.interfaces.backend import Backend
    from ttsframe.core.interfaces.encoder import Encoder
    from ttsframe.core.observability.tracing import Tracing
    from ttsframe.core.speech.quality import QualityStage
    from ttsframe.core.speech.scheduler import Scheduler

log = logging.getLogger("ttsframe.speech")


class RunHost(Protocol):
    """What a run reads from the service that made it (``SpeechService`` is one); named
    here so that a run does not depend on the service, which makes runs."""

    settings: Settings
    scheduler: Scheduler
    backends: dict[str, Backend]
    quality: QualityStage
    tracing: Tracing
    # Streams open per backend (``/health``, the metrics).
    open_streams: dict[str, int]

    def encoder(self, fmt: str) -> Encoder: ...

    async def notify(self, event: GenerationEvent) -> None: ...


class SpeechRun:
    """A prepared request's generation, its reply and its one end-of-run report.

    ``tasks``: the generations, when the caller set them up (default: ``part_tasks``).
    ``streamed``: the reply is sent as it comes (:meth:`open`), else drained whole.
    ``continue_from``: (an earlier request, its first result): these tasks take its
    audio and text as their prompt before they are queued (a live session's later
    segments). ``job_id`` names the run (its task id) and goes on its event; with it
    the run records its progress. ``on_start`` is called when generation starts.
    """

    def __init__(self, service: RunHost, prepared: PreparedSpeech,
                 tasks: list[SynthesisTask] | None = None, *, streamed: bool = False,
                 continue_from: tuple[PreparedSpeech, SynthesisResult] | None = None,
                 job_id: str | None = None,
                 on_start: Callable[[Ticket], None] | None = None) -> None:
        self.service = service
        self.scheduler = service.scheduler
        self.prepared = prepared
        self.streamed = streamed
        self.job_id = job_id
        self.on_start = on_start
        # Done / total of the generation (a job's, see ``job_id``), from the backend.
        self.progress: tuple[int, int] | None = None
        if job_id is not None:
            prepared.task.task_id = job_id
            prepared.task.on_progress = self._progressed
        self.tasks = tasks if tasks is not None else part_tasks(prepared)
        self._continue_from = continue_from
        self.ticket: Ticket | None = None
        self.stream: SpeechStream | None = None
        self._reported = False
        self._counted = False  # in ``service.open_streams``

    @property
    def task_id(self) -> str:
        return self.prepared.task.task_id

    @property
    def backend(self) -> Backend:
        return self.service.backends[self.prepared.backend]

    def _progressed(self, done: int, total: int) -> None:  # on the backend's thread
        self.progress = (done, total)

    # -- starting ---------------------------------------------------------------------

    def start(self) -> SpeechRun:
        """Queue the request's tasks (raises ``QueueFull`` / ``BackendUnavailable`` /
        ``ShuttingDown``; nothing is reported then) and set up its stream. Once only."""
        assert self.ticket is None, "a run starts once"
        prepared, tasks = self.prepared, self.tasks
        try:
            if self._continue_from is not None:
                first, result = self._continue_from
                continue_voice(self.backend, first, tasks, result)
            self.ticket = self._submit(tasks)
        finally:
            self.scheduler.end_announcement(prepared.announcement)
        if self.on_start is not None:
            self.ticket.on_start = self.on_start
        pipeline = self._pipeline()
        self.stream = SpeechStream(prepared=prepared, scheduler=self.scheduler,
                                   ticket=self.ticket, pipeline=pipeline,
                                   loop=asyncio.get_running_loop(),
                                   on_end=self._stream_ended if self.streamed else None)
        if self.streamed:
            stream = self.stream
            stream.head = self.speech_output()  # what the reply's headers say
            # No await since the tasks were queued: no task has started yet.
            for index, task in enumerate(tasks):
                task.on_audio = stream.audio_callback(index)
            prepared.watch.claim = stream.hold_part  # retried takes replace held audio only
            if prepared.checked:  # a runaway take is not streamed past its slowest rate
                stream.limits = [self.service.quality.stream_limit(prepared.backend, task,
                                                                   pipeline.rate)
                                 for task in tasks]
            self.service.open_streams[prepared.backend] += 1  # until the stream ends
            self._counted = True
        return self

    def _submit(self, tasks: list[SynthesisTask]) -> Ticket:
        """One ticket for the request's tasks; a continued text's later chunks are held
        until the first is done (``_first_done``)."""
        prepared = self.prepared
        reviews = None
        if prepared.checked:
            quality = self.service.quality
            reviews = [quality.reviewer(PartReview(prepared.backend, i, len(tasks),
                                                   prepared.watch))
                       for i in range(len(tasks))]
        if len(tasks) == 1 and tasks[0] is prepared.task:
            return self.scheduler.submit(prepared.backend, prepared.task,
                                         reviews[0] if reviews else None)
        ticket = self.scheduler.submit_parts(prepared.backend, prepared.task, tasks,
                                             join_results, reviews=reviews,
                                             hold_rest=prepared.continued)
        if prepared.continued:
            ticket.parts[0].future.add_done_callback(lambda _f: self._first_done(ticket))
        return ticket

    def _first_done(self, ticket: Ticket) -> None:
        """The first chunk of a continued text is done: its audio and text become the
        later chunks' prompt, and they are queued (or end as the first one did)."""
        first = ticket.parts[0].future
        error = None
        if not first.cancelled() and first.exception() is None and not self.scheduler.closing:
            try:
                continue_voice(self.backend, self.prepared, self.tasks[1:], first.result())
            except Exception as exc:
                log.exception("preparing the later parts of %s failed", self.task_id)
                error = exc
        self.scheduler.release_rest(ticket, error)

    def _pipeline(self) -> OutputPipeline:
        prepared = self.prepared
        request = prepared.request
        silences = sum(1 for pause in prepared.pauses if pause) + (prepared.lead_s > 0)
        return OutputPipeline(self.service.encoder(request.response_format),
                              self.backend.capabilities.sample_rate,
                              prepared.speed, parts=len(prepared.chunks) + silences,
                              whole=not self.streamed,
                              keep=self.service.settings.logging.save_outputs,
                              out_rate=request.sample_rate)

    # -- the reply ----------------------------------------------------------------------

    async def open(self) -> SpeechStream:
        """A streamed run's stream, once its first bytes are ready (so that whatever
        fails before any audio is an ordinary error reply). Its end, however it comes
        (done, failed, closed by a client that left), is reported once."""
        assert self.stream is not None and self.streamed, "start(streamed) first"
        await self.stream.start()
        return self.stream

    async def whole(self) -> SpeechOutput:
        """The whole reply: the stream drained into one file; raises the generation's
        failure. Reports nothing (see :meth:`output`, :meth:`finish`)."""
        stream, ticket = self.stream, self.ticket
        assert stream is not None and ticket is not None and not self.streamed
        await stream.drain()
        with self.service.tracing.span(
                "ttsframe.encode", **{"ttsframe.format": self.prepared.request.response_format}):
            data = await anyio.to_thread.run_sync(stream.pipeline.finish)
        # Shielded: a caller that gives up must not cancel the ticket's future itself, or
        # the scheduler would take the task as settled and let it run on. Once it is
        # settled, the ticket's timings and batch size are final.
        await asyncio.shield(ticket.future)
        output = self.speech_output(data)
        self._log_warnings(output)
        return output

    async def output(self) -> SpeechOutput:
        """:meth:`whole`, reported when it ends: done, failed, or abandoned by its caller
        (a client that left cancels the generation)."""
        try:
            output = await self.whole()
        except BaseException as exc:
            self.cancel("request abandoned", cause_of_stop(exc))
            await asyncio.shield(self.finish(error=exc))
            raise
        await self.finish(output=output)
        return output

    def cancel(self, reason: str = "cancelled by request",
               cause: CancelCause = CancelCause.REQUEST) -> bool:
        """Stop the generation (every chunk); False when it had ended already. A
        streamed run's stream ends, and is reported, with it."""
        if self.ticket is None:
            return False
        if self.streamed and self.stream is not None:
            self.stream.close(reason, cause)
        if self.scheduler.cancel(self.task_id, reason, cause):
            self.ticket.future.add_done_callback(_retrieve)
            return True
        return False

    async def finish(self, output: SpeechOutput | None = None,
                     error: BaseException | None = None) -> None:
        """Report the run's end to the observers; only the first call reports."""
        if self._reported:
            return
        self._reported = True
        assert self.ticket is not None
        streamed_bytes = self.stream.pipeline.bytes_out if self.streamed else None
        await self.service.notify(GenerationEvent(self.prepared, self.ticket, output=output,
                                                  error=error, job_id=self.job_id,
                                                  streamed_bytes=streamed_bytes))

    async def _stream_ended(self, stream: SpeechStream, error: BaseException | None) -> None:
        """A streamed run's end (``SpeechStream``'s ``on_end``, once)."""
        if self._counted:
            self._counted = False
            self.service.open_streams[self.prepared.backend] -= 1
        if error is not None:
            await self.finish(error=await self._stopped(error))
            return
        data = b""
        if stream.pipeline.kept is not None:  # logging.save_outputs: keep a whole file
            data = await anyio.to_thread.run_sync(stream.pipeline.whole_file)
        output = self.speech_output(data)
        self._log_warnings(output)
        await self.finish(output=output)

    async def _stopped(self, error: BaseException) -> BaseException:
        """What a stream that ended early reports, once its generation has really
        stopped (the backend ends between steps): the log's times then say how long the
        worker was held, and a backend's own words (``cancelled after 37 of 784 decoding
        steps``) how far it got."""
        future = self.ticket.future if self.ticket is not None else None
        if future is None:
            return error
        if not future.done():
            await asyncio.wait([future])  # wait only: the stream's end cancelled it
        if future.cancelled():
            return error
        stopped = future.exception()
        if isinstance(error, Cancelled) and isinstance(stopped, Cancelled):
            return stopped
        return error

    def speech_output(self, data: bytes = b"") -> SpeechOutput:
        """The reply's description: up front (the stream's ``head``: no audio, duration or
        tokens yet), or at the end with the audio and every part's notes (and, when the
        request asked for them, its captions in ``X-Captions``, base64)."""
        stream = self.stream
        assert stream is not None
        prepared, pipeline = self.prepared, stream.pipeline
        encoder, rate = pipeline.encoder, pipeline.out_rate
        fmt = prepared.request.captions
        headers = {**encoder.response_headers(rate), **chunk_headers(prepared)}
        if fmt and data and len(stream.part_spans) == len(prepared.chunks):
            text = caption_text(captions_of(prepared.chunks, stream.part_spans, pipeline.rate,
                                            prepared.request.speed), fmt)
            headers["X-Captions"] = base64.b64encode(text.encode()).decode()
            headers["X-Captions-Format"] = fmt
        if stream.results or not prepared.checked:  # a stream's head cannot know yet
            headers["X-Quality"] = quality_header(
                quality_summary(stream.results) if prepared.checked else None)
        return SpeechOutput(
            audio=data, content_type=encoder.content_type, sample_rate=encoder.output_rate(rate),
            headers=headers,
            duration_s=pipeline.duration_s, text=prepared.task.text,
            voice_id=prepared.voice.voice_id, backend=prepared.backend,
            tokens=sum(r.tokens for r in stream.results),
            warnings=_unique([*prepared.warnings, *prepared.task.notes,
                              *(note for r in stream.results for note in r.notes),
                              *stream.cuts]))

    def _log_warnings(self, output: SpeechOutput) -> None:
        for warning in output.warnings:
            log.warning("request %s: %s", self.task_id, warning)


def _retrieve(future: asyncio.Future) -> None:
    """Read an abandoned ticket's outcome, so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()


def join_results(results: list[SynthesisResult]) -> SynthesisResult:
    """The chunks of a long text as the request ticket's one result: tokens summed, notes
    once each. Its audio is empty: the parts keep theirs, which the request's
    ``SpeechStream`` joins in text order as it arrives."""
    return SynthesisResult(
        samples=np.zeros(0, np.float32), sample_rate=results[0].sample_rate,
        tokens=sum(r.tokens for r in results),
        notes=_unique([note for r in results for note in r.notes]),
        info={"chunks": len(results), "parts": [r.info for r in results]})


def chunk_headers(prepared: PreparedSpeech) -> dict[str, str]:
    """Headers every reply carries: the chunk count and the seed of a sampled take."""
    headers = {"X-Text-Chunks": str(max(1, len(prepared.chunks)))}
    if prepared.task.params.seed is not None:
        headers["X-Seed"] = str(prepared.task.params.seed)
    return headers


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
