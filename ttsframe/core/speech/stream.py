"""A request's generation as a stream of encoded audio, whole replies included.

A request runs one task per text chunk. Their audio travels ``backend thread -> on_audio
-> event loop queue -> parts in text order -> OutputPipeline (joins, tempo, encoder)``.
A streamed reply sends the bytes as they come; a buffered reply or a job drains the same
stream into one file (its tasks have no ``on_audio``: each part arrives whole when it is
done), so both decode to the same audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import anyio.to_thread
import numpy as np

from ttsframe.core.audio_math import resample
from ttsframe.core.errors import CancelCause, Cancelled, cause_of_stop
from ttsframe.core.interfaces.speech_types import SpeechOutput
from ttsframe.core.interfaces.synthesis import SynthesisResult
from ttsframe.core.speech.output_pipeline import OutputPipeline
from ttsframe.core.speech.scheduler import Scheduler, Ticket, failure_of

if TYPE_CHECKING:
    from ttsframe.core.speech.prepared import PreparedSpeech

log = logging.getLogger("ttsframe.streaming")


class SpeechStream:
    """A request's generation as encoded audio, in text order, as it comes.

    ``parts`` are the tickets of the request's tasks in text order (one unless the text
    was split); a streamed request's tasks get ``audio_callback(index)`` as their
    ``on_audio``. Audio of later parts is held until earlier parts are sent. A streamed
    reply calls :meth:`start` and iterates; :meth:`close` cancels the generation (client
    gone) and ``on_end(stream, error)`` runs once, however the stream ended. A whole
    reply calls :meth:`drain`, then ``pipeline.finish()`` for the file.
    """

    def __init__(self, *, prepared: PreparedSpeech, scheduler: Scheduler, ticket: Ticket,
                 pipeline: OutputPipeline, loop: asyncio.AbstractEventLoop,
                 on_end: Callable[[SpeechStream, BaseException | None], Awaitable[None]]
                 | None = None) -> None:
        self.prepared = prepared
        self.scheduler = scheduler
        self.ticket = ticket
        self.parts = ticket.parts or [ticket]
        self.pipeline = pipeline
        self.results: list[SynthesisResult] = []  # of the parts done so far, in order
        # Where each part done so far lies in the joined audio, in samples at the
        # pipeline's rate before the tempo change (start, end): caption times.
        self.part_spans: list[tuple[int, int]] = []
        # A streamed reply: what its headers say (format, rate, voice, warnings known
        # up front), set by its ``SpeechRun``.
        self.head: SpeechOutput | None = None
        self._loop = loop
        self._events: asyncio.Queue[tuple[str, int, np.ndarray | None]] = asyncio.Queue()
        self._first: bytes | None = None
        self._body: AsyncIterator[bytes] | None = None
        self._on_end = on_end
        self._ended = False
        self._tasks: set[asyncio.Task] = set()
        # Samples of each part sent on so far, and the parts whose audio is held back
        # while a failed take may be replaced (``hold_part``).
        self._emitted = [0] * len(self.parts)
        self._current = 0
        self._held: set[int] = set()
        # The most samples of each part the stream sends (None: no bound), set by the
        # speech service from the quality stage's slowest speaking rate: a runaway take
        # being streamed is cut there, and ``cut`` says so.
        self.limits: list[int | None] = [None] * len(self.parts)
        self._sent = [0] * len(self.parts)
        self.cuts: list[str] = []
        for index, part in enumerate(self.parts):
            part.future.add_done_callback(
                lambda _f, i=index: self._events.put_nowait(("done", i, None)))

    def audio_callback(self, index: int) -> Callable[[np.ndarray], None]:
        """``on_audio`` for part ``index``: hands samples from the backend's thread to
        the event loop (the queue keeps them ahead of the part's completion)."""
        # The loop and queue only, not the stream: a task that outlives the reply (held by
        # a backend or a batch) must not keep the stream and its encoder alive.
        loop, put = self._loop, self._events.put_nowait

        def on_audio(samples: np.ndarray) -> None:
            loop.call_soon_threadsafe(put, ("audio", index, samples))
        return on_audio

    def hold_part(self, index: int) -> bool:
        """Hold part ``index``'s audio back until its take is settled, if none of it has
        been sent yet; False when it has (a retry could not replace it). On the loop."""
        if index < self._current or self._emitted[index]:
            return False
        self._held.add(index)
        return True

    async def start(self) -> None:
        """Wait for the first bytes, so that a failure before any audio is an ordinary
        error reply (4xx/5xx) rather than a broken stream."""
        self._body = self._produce()
        try:
            self._first = await anext(self._body, b"")
        except BaseException as exc:
            self._end(exc)
            self._close_pipeline()
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._body is not None, "start() first"
        try:
            if self._first:
                yield self._first
            async for data in self._body:
                yield data
        except BaseException as exc:
            self._end(exc if not isinstance(exc, GeneratorExit | asyncio.CancelledError)
                      else Cancelled("the client disconnected",
                                     cause=CancelCause.CLIENT_DISCONNECT))
            # The encoder's threads and buffers go now. Nothing is encoding: the body is
            # finished or waits at a ``yield`` (a cancelled ``to_thread`` call returns
            # only once its thread is done).
            self._close_pipeline()
            raise
        self._end(None)

    def close(self, reason: str = "the client disconnected",
              cause: CancelCause = CancelCause.CLIENT_DISCONNECT) -> None:
        """Stop generating (idempotent); the worker moves on between decoding steps."""
        if not self._ended:
            self._end(Cancelled(reason, cause=cause))

    def _close_pipeline(self) -> None:
        try:
            self.pipeline.close()
        except Exception:  # an encoder plugin's close: its failure is not the reply's
            log.exception("stream %s: closing the encoder failed", self.ticket.task.task_id)

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        if error is not None:
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            if isinstance(error, asyncio.CancelledError):  # the handler went: client gone
                reason = "request abandoned (client disconnected)"
            self.scheduler.cancel(self.ticket.task.task_id, reason, cause_of_stop(error))
            if self._first is not None and not isinstance(error, Cancelled):
                log.error("stream %s failed after its audio had started; the connection is "
                          "closed without a clean end so the client sees it: %s",
                          self.ticket.task.task_id, reason)
        if self._on_end is None:
            return
        task = self._loop.create_task(self._on_end(self, error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Feed every part to the pipeline, for a whole reply (its bytes come from
        ``pipeline.finish``); raises the first part's failure."""
        async for data in self._parts():
            assert not data, "a whole reply's pipeline returns bytes only from finish"

    async def _produce(self) -> AsyncIterator[bytes]:
        async for data in self._parts():
            yield data
        data = await anyio.to_thread.run_sync(self.pipeline.finish)
        if data:
            yield data

    async def _parts(self) -> AsyncIterator[bytes]:
        """The parts' audio through the pipeline in text order, as it arrives."""
        run = anyio.to_thread.run_sync
        buffers: dict[int, list[np.ndarray]] = defaultdict(list)
        done: set[int] = set()
        emitted = self._emitted
        current = 0
        pauses = self.prepared.pauses
        # Each boundary between pieces given to the pipeline is crossfaded: the next
        # piece starts that many samples before the end of the one before.
        fade = round(self.pipeline.crossfade_s * self.pipeline.rate)
        fed, joins = 0, 0
        if self.prepared.lead_s:
            lead = self._silence(self.prepared.lead_s, 1)
            fed, joins = lead.size, 1
            data = await run(self.pipeline.end_part, lead)
            if data:
                yield data
        while current < len(self.parts):
            kind, index, samples = await self._events.get()
            if kind == "audio":
                buffers[index].append(samples)  # type: ignore[arg-type]
            else:
                done.add(index)
                error = failure_of(self.parts[index].future)
                if error is not None:  # the first failure, whichever part: stop here
                    raise error
                if index in self._held:
                    self._held.discard(index)
                    quality = self.parts[index].future.result().info.get("quality") or {}
                    if quality.get("kept"):  # another take: the streamed one is dropped
                        buffers.pop(index, None)
            while current < len(self.parts):
                self._current = current
                for piece in ([] if current in self._held else buffers.pop(current, [])):
                    emitted[current] += piece.size
                    piece = self._within(current, piece)
                    if not piece.size:
                        continue
                    data = await run(self.pipeline.feed, piece)
                    if data:
                        yield data
                if current not in done:
                    break
                result: SynthesisResult = self.parts[current].future.result()
                tail = np.asarray(result.samples, dtype=np.float32)[emitted[current]:]
                if result.sample_rate != self.pipeline.rate:  # soxr: not on the event loop
                    tail = await run(resample, tail, result.sample_rate, self.pipeline.rate)
                tail = self._within(current, tail)
                self.results.append(result)
                size = emitted[current] + tail.size
                start = fed - joins * fade
                self.part_spans.append((start, start + size))
                fed, joins = fed + size, joins + 1
                data = await run(self.pipeline.end_part, tail)
                if current < len(pauses) and pauses[current]:
                    silence = self._silence(pauses[current],
                                            1 + (current + 1 < len(self.parts)))
                    fed, joins = fed + silence.size, joins + 1
                    data += await run(self.pipeline.end_part, silence)
                if data:
                    yield data
                current += 1
                self._current = current

    def _within(self, index: int, samples: np.ndarray) -> np.ndarray:
        """``samples`` of part ``index`` up to its limit; the first cut is noted."""
        limit = self.limits[index]
        if limit is not None and self._sent[index] + samples.size > limit:
            if self._sent[index] <= limit and not any(f"chunk {index + 1} " in c
                                                      for c in self.cuts):
                what = f"chunk {index + 1} " if len(self.parts) > 1 else "the take "
                self.cuts.append(
                    f"quality: {what}was cut at {limit / self.pipeline.rate:.1f} s while "
                    "it streamed: it ran past the slowest speaking rate for its text, so "
                    "the rest of its audio was not sent")
            samples = samples[:max(0, limit - self._sent[index])]
        self._sent[index] += samples.size
        return samples

    def _silence(self, seconds: float, joins: int) -> np.ndarray:
        """``seconds`` of silence as the listener hears them: lengthened by the
        crossfade each join takes from it and by the reply's tempo change."""
        pipeline = self.pipeline
        seconds = seconds * self.prepared.speed + joins * pipeline.crossfade_s
        return np.zeros(round(seconds * pipeline.rate), dtype=np.float32)
