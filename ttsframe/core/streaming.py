"""Streaming replies: audio leaves the server while it is still being generated.

A streamed request runs exactly the tasks a buffered one runs (one per text chunk). Its
audio travels ``backend thread -> on_audio -> event loop queue -> parts in order ->
crossfaded joins -> tempo -> incremental encoder -> HTTP``. The joins and the tempo
change are the streaming forms of ``audio.crossfade_concat`` and ``audio.time_stretch``,
so a streamed reply decodes to the same audio as the buffered one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from fractions import Fraction

import anyio.to_thread
import av
import numpy as np

from ttsframe.core import audio
from ttsframe.core.encoder import Encoder, StreamWriter
from ttsframe.core.errors import Cancelled
from ttsframe.core.scheduler import Scheduler, Ticket
from ttsframe.core.speech_types import SpeechOutput, SynthesisResult

log = logging.getLogger("ttsframe.streaming")

# Chunks of a long text are joined with this crossfade (buffered and streamed alike).
CROSSFADE_MS = 10.0

_EMPTY = np.zeros(0, np.float32)


class CrossfadeJoiner:
    """Joins parts as they arrive, sample for sample as ``audio.crossfade_concat`` joins
    them whole: the last ``fade`` samples of the output are held back until the start of
    the next part is known (or the stream ends), so a join is mixed before it is sent."""

    def __init__(self, sample_rate: int, fade_ms: float = CROSSFADE_MS) -> None:
        self.fade = max(0, round(sample_rate * fade_ms / 1000.0))
        self._held = _EMPTY  # output not yet released: at most ``fade`` samples after _release
        self._head: list[np.ndarray] = []  # the current part's start, until ``fade`` is known
        self._head_len = 0
        self._joined = False  # the current part has been mixed in
        self._started = False  # a non-empty part has been output

    def feed(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return _EMPTY
        if self._joined:
            self._held = np.concatenate([self._held, x])
        else:
            self._head.append(x)
            self._head_len += x.size
            if self._head_len < self.fade:
                return _EMPTY
            self._join()
        return self._release()

    def end_part(self) -> np.ndarray:
        if not self._joined and self._head_len:
            self._join()  # a part shorter than the fade
        self._joined, self._head, self._head_len = False, [], 0
        return self._release()

    def finish(self) -> np.ndarray:
        out = self.end_part()
        rest, self._held = self._held, _EMPTY
        return np.concatenate([out, rest])

    def _join(self) -> None:
        x = np.concatenate(self._head)
        self._head, self._joined = [], True
        n = min(self.fade, self._held.size, x.size)
        if not self._started or n == 0:
            self._started = True
            self._held = np.concatenate([self._held, x])
            return
        fade_in = (np.arange(n, dtype=np.float32) + 0.5) / n
        mixed = self._held[-n:] * (1.0 - fade_in) + x[:n] * fade_in
        self._held = np.concatenate([self._held[:-n], mixed, x[n:]])

    def _release(self) -> np.ndarray:
        keep = self.fade
        if self._held.size <= keep:
            return _EMPTY
        if keep == 0:
            out, self._held = self._held, _EMPTY
            return out
        out, self._held = self._held[:-keep], self._held[-keep:]
        return out


class TempoStream:
    """``audio.time_stretch`` for a stream: FFmpeg's atempo fed piece by piece."""

    def __init__(self, sample_rate: int, speed: float) -> None:
        self.rate = sample_rate
        self._pts = 0
        tb = Fraction(1, sample_rate)
        self._tb = tb
        self._graph = av.filter.Graph()
        nodes = [self._graph.add_abuffer(sample_rate=sample_rate, format="flt",
                                         layout="mono", time_base=tb)]
        nodes += [self._graph.add("atempo", f"{f!r}") for f in audio._tempo_factors(speed)]
        nodes.append(self._graph.add("abuffersink"))
        self._graph.link_nodes(*nodes)
        self._graph.configure()

    def feed(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        if x.size == 0:
            return _EMPTY
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self._pts, self._tb
        self._pts += x.size
        self._graph.push(frame)
        return self._drain()

    def finish(self) -> np.ndarray:
        self._graph.push(None)
        return self._drain()

    def _drain(self) -> np.ndarray:
        out: list[np.ndarray] = []
        while True:
            try:
                frame = self._graph.pull()
            except (BlockingIOError, av.error.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(out).astype(np.float32, copy=False) if out else _EMPTY


class StreamEncoder:
    """Parts in order -> joins -> tempo -> encoder; every call returns bytes to send.

    Not thread-safe; the stream calls it from one thread at a time. ``keep`` keeps the
    final samples (for the generation log's saved outputs).
    """

    def __init__(self, encoder: Encoder, sample_rate: int, speed: float, *,
                 parts: int = 1, keep: bool = False) -> None:
        self.rate = sample_rate
        # One part has no joins: nothing needs holding back.
        self._joiner = CrossfadeJoiner(sample_rate, CROSSFADE_MS if parts > 1 else 0.0)
        self._tempo = TempoStream(sample_rate, speed) if speed != 1.0 else None
        self._writer: StreamWriter = encoder.open_stream(sample_rate)
        self.samples_out = 0
        self.bytes_out = 0  # encoded bytes handed out so far
        self.kept: list[np.ndarray] | None = [] if keep else None

    def feed(self, samples: np.ndarray) -> bytes:
        return self._count(self._emit(self._joiner.feed(samples)))

    def end_part(self, tail: np.ndarray) -> bytes:
        data = self._emit(self._joiner.feed(tail))
        return self._count(data + self._emit(self._joiner.end_part()))

    def finish(self) -> bytes:
        data = self._emit(self._joiner.finish())
        if self._tempo is not None:
            data += self._write(self._tempo.finish())
        return self._count(data + self._writer.finish())

    def _count(self, data: bytes) -> bytes:
        self.bytes_out += len(data)
        return data

    @property
    def duration_s(self) -> float:
        return self.samples_out / self.rate

    def _emit(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        if self._tempo is not None:
            samples = self._tempo.feed(samples)
        return self._write(samples)

    def _write(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        self.samples_out += samples.size
        if self.kept is not None:
            self.kept.append(samples)
        return self._writer.feed(samples)


class SpeechStream:
    """An open streamed generation: what to tell the client now, audio as it comes.

    ``parts`` are the tickets of the request's tasks in text order (one unless the text
    was split); each part's task gets ``audio_callback(index)`` as its ``on_audio``.
    Audio of later parts is held until earlier parts are sent. :meth:`close` cancels the
    generation (client gone); ``on_end(encoder, results, error)`` runs once, however the
    stream ended.
    """

    def __init__(self, *, scheduler: Scheduler, ticket: Ticket, encoder: StreamEncoder,
                 loop: asyncio.AbstractEventLoop,
                 on_end: Callable[[StreamEncoder, list[SynthesisResult], BaseException | None],
                                  Awaitable[None]]) -> None:
        self.scheduler = scheduler
        self.ticket = ticket
        self.parts = ticket.parts or [ticket]
        self.encoder = encoder
        self.results: list[SynthesisResult] = []
        # What the reply's headers say (format, rate, voice, warnings known up front).
        self.head: SpeechOutput | None = None
        self._loop = loop
        self._events: asyncio.Queue[tuple[str, int, np.ndarray | None]] = asyncio.Queue()
        self._first: bytes | None = None
        self._body: AsyncIterator[bytes] | None = None
        self._on_end = on_end
        self._ended = False
        self._tasks: set[asyncio.Task] = set()
        for index, part in enumerate(self.parts):
            part.future.add_done_callback(
                lambda _f, i=index: self._events.put_nowait(("done", i, None)))

    def audio_callback(self, index: int) -> Callable[[np.ndarray], None]:
        """``on_audio`` for part ``index``: hands samples from the backend's thread to
        the event loop (the queue keeps them ahead of the part's completion)."""
        def on_audio(samples: np.ndarray) -> None:
            self._loop.call_soon_threadsafe(self._events.put_nowait, ("audio", index, samples))
        return on_audio

    async def start(self) -> None:
        """Wait for the first bytes, so that a failure before any audio is an ordinary
        error reply (4xx/5xx) rather than a broken stream."""
        self._body = self._produce()
        try:
            self._first = await anext(self._body, b"")
        except BaseException as exc:
            self._end(exc)
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
                      else Cancelled("the client disconnected"))
            raise
        self._end(None)

    def close(self, reason: str = "the client disconnected") -> None:
        """Stop generating (idempotent); the worker moves on between decoding steps."""
        if not self._ended:
            self._end(Cancelled(reason))

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        if error is not None:
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            if isinstance(error, asyncio.CancelledError):  # the handler went: client gone
                reason = "request abandoned (client disconnected)"
            self.scheduler.cancel(self.ticket.task.task_id, reason)
            if self._first is not None and not isinstance(error, Cancelled):
                log.error("stream %s failed after its audio had started; the connection is "
                          "closed without a clean end so the client sees it: %s",
                          self.ticket.task.task_id, reason)
        task = self._loop.create_task(self._on_end(self.encoder, self.results, error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _produce(self) -> AsyncIterator[bytes]:
        run = anyio.to_thread.run_sync
        buffers: dict[int, list[np.ndarray]] = defaultdict(list)
        done: set[int] = set()
        emitted = [0] * len(self.parts)
        current = 0
        while current < len(self.parts):
            kind, index, samples = await self._events.get()
            if kind == "audio":
                buffers[index].append(samples)  # type: ignore[arg-type]
            else:
                done.add(index)
                error = _failure(self.parts[index])
                if error is not None:  # the first failure, whichever part: stop here
                    raise error
            while current < len(self.parts):
                for piece in buffers.pop(current, []):
                    emitted[current] += piece.size
                    data = await run(self.encoder.feed, piece)
                    if data:
                        yield data
                if current not in done:
                    break
                result: SynthesisResult = self.parts[current].future.result()
                tail = np.asarray(result.samples, dtype=np.float32)[emitted[current]:]
                if result.sample_rate != self.encoder.rate:
                    tail = audio.resample(tail, result.sample_rate, self.encoder.rate)
                self.results.append(result)
                data = await run(self.encoder.end_part, tail)
                if data:
                    yield data
                current += 1
        data = await run(self.encoder.finish)
        if data:
            yield data


def _failure(ticket: Ticket) -> BaseException | None:
    future = ticket.future
    if future.cancelled():
        return Cancelled("cancelled")
    return future.exception()
