"""Live speech: text that arrives in pieces, spoken as it arrives.

A ``LiveSession`` holds one voice for one stream of text. The ``Segmenter`` releases
segments (sentences, long clauses, a flush, or text left waiting ``release_wait_ms``);
each segment becomes an ordinary request through ``SpeechService`` (preprocessors, voice,
scheduler, backend, output pipeline) as soon as it is released, so it batches with
everything else, and its audio is sent as it is generated. Segments are sent in order;
at most ``segments_ahead`` generate beyond the one being sent, and the client's queue
holds at most ``send_buffer`` messages, so a client that does not read pauses
generation and, after ``slow_client_s``, ends the session (``SlowClient``).

One voice: every segment has the first segment's seed; for a voice without an audio
prompt on a cloning backend, the later segments wait for the first and take its audio
and text as their prompt (the ``SpeechRun``'s ``continue_from``, with the
``continue_voice`` of the chunked path).

``LiveSessions`` is the server's set of open sessions: limits in all and per key, and
what the metrics read. The transports (``http/routes/live.py``) only parse messages and
send what ``next_event`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import (
    CancelCause,
    Cancelled,
    SessionIdle,
    SessionLimit,
    SlowClient,
    TooManySessions,
)
from ttsframe.core.interfaces.speech_types import SpeechRequest
from ttsframe.core.interfaces.synthesis import SynthesisResult
from ttsframe.core.live.audio import LiveAudio, LiveFormat, pcm16_to_float
from ttsframe.core.live.segmenter import Segmenter
from ttsframe.core.speech.service import PreparedSpeech, SpeechService
from ttsframe.core.speech.stream import SpeechStream

log = logging.getLogger("ttsframe.live")

OUTCOMES = ("completed", "cancelled", "failed", "idle", "limit", "slow_client")


@dataclass
class SegmentInfo:
    """A segment that was spoken: its text, its place in the session's audio (seconds
    from the session's first sample), its request id and warnings."""

    index: int
    text: str
    request_id: str
    start_s: float
    end_s: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class LiveEvent:
    """What the transport sends: ``audio`` bytes, a ``segment`` spoken, or ``end`` (with
    ``error`` when the session failed)."""

    kind: str
    audio: bytes = b""
    segment: SegmentInfo | None = None
    error: BaseException | None = None


@dataclass
class _Segment:
    index: int
    text: str
    released_at: float
    task: asyncio.Task | None = None
    stream: SpeechStream | None = None
    prepared: PreparedSpeech | None = None


class LiveSession:
    def __init__(self, sessions: LiveSessions, base: SpeechRequest, fmt: LiveFormat,
                 *, session_id: str, owner: str | None, schedule: list[int] | None = None,
                 idle_timeout_s: float | None = None) -> None:
        live = sessions.settings.live
        self.sessions = sessions
        self.speech = sessions.speech
        self.live = live
        self.base = base
        self.format = fmt
        self.id = session_id
        self.owner = owner
        self.idle_timeout_s = idle_timeout_s or live.idle_timeout_s
        self.segmenter = Segmenter(clause_chars=live.clause_chars,
                                   max_chars=live.max_segment_chars, schedule=schedule)
        self.segments: list[_Segment] = []
        self.chars = 0
        self.seed: int | None = base.params.seed
        self.audio: LiveAudio | None = None
        self.outcome: str | None = None
        self.started_at = time.monotonic()
        self._events: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._input_ended = False
        self._sending = 0
        self._voice_known = False  # the later segments' prompt is decided
        self._first: tuple[PreparedSpeech, SynthesisResult] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._pump = self._loop.create_task(self._run())
        self._deadline = self._loop.call_later(live.max_session_s, self._too_long)

    # -- input ------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Text as it was written; segments are released as soon as they are complete."""
        self._check_open()
        self.chars += len(text)
        if self.chars > self.live.max_session_chars:
            raise SessionLimit(f"the session sent {self.chars} characters of text; the limit "
                               f"is {self.live.max_session_chars} (live.max_session_chars): "
                               "start a new session")
        self._release(self.segmenter.feed(text))
        self._arm_timer()

    def flush(self) -> None:
        """Speak everything held now, even mid-sentence."""
        self._check_open()
        self._release(self.segmenter.flush())

    def end_input(self) -> None:
        """No more text: speak what is held; the events end after its audio."""
        if self._input_ended or self.outcome is not None:
            return
        self._release(self.segmenter.flush())
        self._input_ended = True
        self._wake.set()

    @property
    def input_ended(self) -> bool:
        return self._input_ended

    def _check_open(self) -> None:
        if self._input_ended:
            raise SessionLimit("the session's text has ended; start a new session")

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.segmenter.held.strip():
            return
        wait = (self.live.sentence_wait_ms if self.segmenter.ends_sentence()
                else self.live.release_wait_ms)
        self._timer = self._loop.call_later(wait / 1000, self._waited)

    def _waited(self) -> None:
        self._timer = None
        if self.outcome is None and not self._input_ended:
            self._release(self.segmenter.flush())

    def _release(self, texts: list[str]) -> None:
        if self.outcome is not None:  # ended: the transport is closing it
            return
        now = time.monotonic()
        for text in texts:
            self.segments.append(_Segment(len(self.segments), text, now))
            self.sessions.on_segment_released()
        if texts:
            self._launch()
            self._wake.set()

    # -- generation -------------------------------------------------------------------

    def _launch(self) -> None:
        """Start the segments allowed to generate now: in order, at most
        ``segments_ahead`` past the one being sent, the later ones once the voice is known."""
        for seg in self.segments:
            if seg.task is not None:
                continue
            if seg.index > self._sending + self.live.segments_ahead:
                return
            if seg.index > 0 and not self._voice_known:
                return
            seg.task = self._loop.create_task(self._open(seg))

    async def _open(self, seg: _Segment) -> SpeechStream:
        params = self.base.params
        if self.seed is not None:
            params = msgspec.structs.replace(params, seed=self.seed)
        if seg.index > 0:  # the session's own continuity replaces the chunked one
            params = msgspec.structs.replace(params, chunk_continuity=False)
        request = msgspec.structs.replace(self.base, text=seg.text, params=params, notes=[],
                                          request_id=f"{self.id}.{seg.index}", stream=True)
        prepared = await self.speech.prepare(request)
        seg.prepared = prepared
        if seg.index == 0:
            self.seed = prepared.task.params.seed
        # Later segments take the first one's audio and text as their prompt.
        run = self.speech.run(prepared, streamed=True, continue_from=self._first).start()
        stream = await run.open()
        seg.stream = stream
        if self.audio is None:  # the rate of the segments' PCM, as their encoder says
            assert stream.head is not None
            self.audio = LiveAudio(self.format, stream.head.sample_rate,
                                   self.speech.encoders.get("mp3"))
        self.sessions.on_first_audio(time.monotonic() - seg.released_at)
        if seg.index == 0:
            if self._continues(prepared):
                stream.parts[0].future.add_done_callback(
                    lambda f: self._first_done(prepared, f))
            else:
                self._voice_known = True
                self._launch()
        return stream

    def _continues(self, prepared: PreparedSpeech) -> bool:
        caps = self.speech.backends[prepared.backend].capabilities
        wanted = self.base.params.chunk_continuity
        if wanted is None:
            wanted = self.speech.settings.generation.chunk_continuity
        return prepared.task.prompt is None and caps.supports_cloning and wanted

    def _first_done(self, prepared: PreparedSpeech, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self._first = (prepared, future.result())
        self._voice_known = True
        if self.outcome is None:
            self._launch()

    async def _run(self) -> None:
        try:
            index = 0
            while True:
                while index >= len(self.segments):
                    if self._input_ended:
                        tail = self.audio.finish() if self.audio is not None else b""
                        if tail:
                            await self._put(LiveEvent("audio", tail))
                        self._finish("completed")
                        return
                    self._wake.clear()
                    await self._wake.wait()
                seg = self.segments[index]
                self._sending = index
                self._launch()
                assert seg.task is not None
                stream = await seg.task
                assert self.audio is not None and stream.head is not None
                start = self.audio.seconds
                async for data in stream:
                    out = self.audio.feed(pcm16_to_float(data))
                    if out:
                        await self._put(LiveEvent("audio", out))
                warnings = [w for w in stream.head.warnings]
                await self._put(LiveEvent("segment", segment=SegmentInfo(
                    index, seg.text, f"{self.id}.{index}", start, self.audio.seconds,
                    warnings)))
                index += 1
                self._sending = index
                self._launch()
        except asyncio.CancelledError:
            raise
        except SlowClient as exc:
            self._finish("slow_client", exc)
        except BaseException as exc:
            outcome = ("cancelled" if isinstance(exc, Cancelled) else "failed")
            self._finish(outcome, exc)

    async def _put(self, event: LiveEvent) -> None:
        """Queue an event for the client; wait while ``send_buffer`` are unread, and give
        up (``SlowClient``) when none is taken for ``slow_client_s``."""
        while self._events.qsize() >= self.live.send_buffer:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), self.live.slow_client_s)
            except TimeoutError:
                raise SlowClient(
                    f"the client read no audio for {self.live.slow_client_s:g} s "
                    "(live.slow_client_s); the session was closed rather than buffer "
                    "without bound") from None
        self._events.put_nowait(event)

    async def next_event(self) -> LiveEvent:
        """The next thing to send; ``end`` is the last."""
        event = await self._events.get()
        self._room.set()
        return event

    # -- ending -----------------------------------------------------------------------

    def _too_long(self) -> None:
        self.fail(SessionLimit(
            f"the session has been open {self.live.max_session_s:g} s, the limit "
            "(live.max_session_s): start a new session"), "limit")

    def idle(self) -> None:
        """The transport saw no message for ``idle_timeout_s``."""
        self.fail(SessionIdle(f"no message for {self.idle_timeout_s:g} s (the session's "
                              "inactivity timeout); send text, or a keep-alive, sooner"),
                  "idle")

    def fail(self, error: BaseException, outcome: str = "failed") -> None:
        """End the session now with ``error``: queued and running segments are cancelled."""
        if self.outcome is not None:
            return
        self._stop(str(getattr(error, "message", error)), CancelCause.REQUEST)
        self._finish(outcome, error)

    def close(self, reason: str = "the client disconnected",
              cause: CancelCause = CancelCause.CLIENT_DISCONNECT) -> None:
        """The client left (or the context was closed): cancel everything at once."""
        if self.outcome is None:
            self._stop(reason, cause)
            self._finish("cancelled")
        self.sessions.forget(self)

    def _stop(self, reason: str, cause: CancelCause) -> None:
        if asyncio.current_task() is not self._pump:
            self._pump.cancel()
        for seg in self.segments:
            if seg.stream is not None:
                seg.stream.close(reason, cause)
            elif seg.task is not None and not seg.task.done():
                seg.task.cancel()  # preparing or waiting for its first audio

    def _finish(self, outcome: str, error: BaseException | None = None) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        for handle in (self._timer, self._deadline):
            if handle is not None:
                handle.cancel()
        for seg in self.segments:  # a failed segment's siblings must not run on
            if seg.task is not None and not seg.task.done():
                seg.task.cancel()
            elif seg.task is not None and not seg.task.cancelled():
                seg.task.exception()  # retrieved: reported through the session
        if error is not None and outcome != "cancelled":
            for seg in self.segments:
                if seg.stream is not None:
                    seg.stream.close("the session ended", CancelCause.PART_FAILED)
        if error is not None:  # what was not sent yet is dropped: the session failed
            while not self._events.empty():
                self._events.get_nowait()
        self._events.put_nowait(LiveEvent("end", error=error))
        self.sessions.ended(self, outcome)


class LiveSessions:
    """Open live sessions and their limits: ``live.max_sessions`` in all,
    ``live.max_sessions_per_key`` per client key."""

    def __init__(self, settings: Settings, speech: SpeechService) -> None:
        self.settings = settings
        self.speech = speech
        self.open: dict[str, LiveSession] = {}
        # Hooks for the metrics (``Metrics.watch_live``).
        self.on_session_end: Callable[[str], None] = lambda outcome: None
        self.on_segment_released: Callable[[], None] = lambda: None
        self.on_first_audio: Callable[[float], None] = lambda seconds: None

    def start(self, base: SpeechRequest, fmt: LiveFormat, *, owner: str | None,
              request_id: str | None = None, schedule: list[int] | None = None,
              idle_timeout_s: float | None = None) -> LiveSession:
        live = self.settings.live
        if len(self.open) >= live.max_sessions:
            raise TooManySessions(f"{len(self.open)} live sessions are open, the limit "
                                  "(live.max_sessions); try again when one ends")
        mine = sum(1 for s in self.open.values() if s.owner == owner)
        if mine >= live.max_sessions_per_key:
            raise TooManySessions(f"this key has {mine} live sessions open, the limit "
                                  "(live.max_sessions_per_key); end one first")
        session_id = f"{request_id or 'live'}.{uuid.uuid4().hex[:8]}"
        session = LiveSession(self, base, fmt, session_id=session_id, owner=owner,
                              schedule=schedule, idle_timeout_s=idle_timeout_s)
        self.open[session_id] = session
        return session

    def ended(self, session: LiveSession, outcome: str) -> None:
        self.on_session_end(outcome)
        log.info("live session %s %s after %d segments", session.id, outcome,
                 len(session.segments))

    def forget(self, session: LiveSession) -> None:
        self.open.pop(session.id, None)
