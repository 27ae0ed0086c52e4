"""The request path after HTTP: preprocess -> voice -> scheduler -> post-process -> encode.

Each step is owned by one collaborator injected at startup; this module only orders them.
Blocking work (prompt loading, time-stretching, encoding) runs in threads so the event
loop keeps answering ``/health`` and job polls during generation. Text longer than the
backend speaks well becomes one task per chunk under one scheduler ticket (``part_tasks``).
Every reply is the request's ``SpeechStream`` (``core/speech_stream.py``) through one
``OutputPipeline``: ``open_stream`` sends its audio as it comes, ``finish`` (buffered
replies and jobs) drains it into one file.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import anyio.to_thread
import msgspec
import numpy as np

from ttsframe.core.audio_math import check_speed
from ttsframe.core.backend import Backend
from ttsframe.core.captions import FORMATS as CAPTION_FORMATS
from ttsframe.core.captions import caption_text, captions_of
from ttsframe.core.catalogue import model_names, resolve_model, unknown_model
from ttsframe.core.chunking import chunk_text, speakers_of, split_first_speakers
from ttsframe.core.config import Settings
from ttsframe.core.encoder import Encoder
from ttsframe.core.errors import InvalidInput, NotFound, cause_of_stop
from ttsframe.core.options import decode_options
from ttsframe.core.output_pipeline import OutputPipeline
from ttsframe.core.preprocessor import TextContext, TextPreprocessor
from ttsframe.core.quality import (
    PartReview,
    QualityStage,
    ReplyWatch,
    quality_header,
    quality_summary,
)
from ttsframe.core.request_context import current_request_id
from ttsframe.core.scheduler import Scheduler, Ticket
from ttsframe.core.segmenter import Segmenter
from ttsframe.core.speech_stream import SpeechStream
from ttsframe.core.speech_types import (
    MAX_OUTPUT_RATE,
    MIN_OUTPUT_RATE,
    SpeechOutput,
    SpeechRequest,
)
from ttsframe.core.ssml import is_ssml, parse_ssml
from ttsframe.core.synthesis import Capabilities, SynthesisResult, SynthesisTask
from ttsframe.core.tracing import Tracing
from ttsframe.core.voice_store import VoiceStore
from ttsframe.core.voices import AudioPrompt, Voice

log = logging.getLogger("ttsframe.speech")

# No chunk of a long text is made smaller than this (UTF-8 bytes).
MIN_CHUNK_BYTES = 64
# Speech runs at about 13-17 bytes of text per second; planning with fewer errs on the
# long side, so the room a chunk's audio takes in a decoder is not underestimated.
SPEECH_BYTES_PER_SECOND = 12.0
# The first chunk of a text whose later chunks are cloned from it: a sentence or two.
FIRST_CHUNK_BYTES = 128


@dataclass
class PreparedSpeech:
    """Everything decided before the scheduler: the task and how to finish it."""

    task: SynthesisTask
    backend: str
    voice: Voice
    request: SpeechRequest
    warnings: list[str]
    # The text of each generation, in order: ``[task.text]`` unless a long text was split.
    chunks: list[str] = field(default_factory=list)
    # Seconds of silence after each chunk (SSML breaks; empty: none), and before the first.
    pauses: list[float] = field(default_factory=list)
    lead_s: float = 0.0
    # The reply's tempo: the request's speed times an SSML document's <prosody rate>
    # (kept here, not written back, so a stored job read again is not sped up twice).
    speed: float = 1.0
    # Chunks 2..n wait for the first and take its audio and text as their prompt
    # (``continue_voice``), so the speaker stays the same.
    continued: bool = False
    # The scheduler's token for this request on its way to ``submit`` (see
    # ``Scheduler.announce_request``): open batch windows wait for it until it is
    # submitted.
    announcement: int | None = None
    # Whether each take is checked (``core/quality``), and the stream's say in whether
    # a part's take may still be replaced.
    checked: bool = False
    watch: ReplyWatch = field(default_factory=ReplyWatch)


@dataclass
class GenerationEvent:
    """One generation that ended (completed, failed or cancelled), for observers such as
    the generation log. ``job_id`` is set for asynchronous jobs."""

    prepared: PreparedSpeech
    ticket: Ticket
    output: SpeechOutput | None = None
    error: BaseException | None = None
    job_id: str | None = None
    # Encoded bytes a streamed reply produced (its ``output.audio`` is kept only when
    # ``logging.save_outputs`` is on).
    streamed_bytes: int | None = None


class SpeechService:
    def __init__(
        self,
        settings: Settings,
        backends: dict[str, Backend],
        preprocessors: list[TextPreprocessor],
        voices: VoiceStore,
        encoders: dict[str, Encoder],
        scheduler: Scheduler,
    ) -> None:
        self.settings = settings
        self.backends = backends
        self.preprocessors = sorted(preprocessors, key=lambda p: (p.order, p.name))
        self.voices = voices
        self.encoders = encoders
        self.scheduler = scheduler
        # Awaited with every GenerationEvent, sync and async alike (see ``notify``).
        self.observers: list[Callable[[GenerationEvent], Awaitable[None]]] = []
        self.tracing = Tracing()  # spans, when [tracing] is on (set at startup)
        # Streamed replies open now, per backend (read by the metrics).
        self.open_streams: dict[str, int] = dict.fromkeys(backends, 0)
        # Checks every take and retries the failed ones (plugins' checks added at startup).
        self.quality = QualityStage(settings, backends)
        self.quality.scheduler = scheduler

    def resolve_backend(self, model: str | None) -> str:
        """The backend a request's ``model`` names (``core/catalogue.py``: one rule)."""
        return resolve_model(model, self.backends, self.settings.generation.default_backend)

    def model_names(self) -> list[str]:
        return model_names(self.backends)

    def unknown_model(self, model: str) -> str:
        return unknown_model(model, self.backends, self.settings.generation.default_backend)

    async def _voice(self, name: str) -> Voice:
        """The voice a request names, through the operator's ``voices.aliases``. Voice
        stores may read files or a database: never on the event loop."""
        target = self.settings.voices.aliases.get(name)
        try:
            return await anyio.to_thread.run_sync(self.voices.get_voice, target or name)
        except NotFound as exc:
            if target is not None:
                raise NotFound(f"voice '{name}' is an alias of '{target}' (voices.aliases), "
                               f"which does not exist; create voice '{target}' or change "
                               "the alias", param="voice", code="voice_not_found") from None
            raise NotFound(exc.message, headers=exc.headers, param="voice",
                           code="voice_not_found") from None

    def encoder(self, fmt: str) -> Encoder:
        encoder = self.encoders.get(fmt.lower())
        if encoder is None:
            raise InvalidInput(
                f"unsupported response_format '{fmt}'; supported formats: "
                f"{', '.join(sorted(self.encoders))}", param="response_format",
                code="invalid_value")
        return encoder

    async def prepare(self, request: SpeechRequest) -> PreparedSpeech:
        """Validate and build the task; every 4xx is raised here, before queueing."""
        if request.request_id is None:
            request.request_id = current_request_id()
        token = self.scheduler.announce_request()  # open batch windows wait for it
        try:
            prepared = await self._prepare(request)
        except BaseException:
            self.scheduler.end_announcement(token)
            raise
        prepared.announcement = token
        return prepared

    async def preview(self, request: SpeechRequest) -> PreparedSpeech:
        """What ``prepare`` decides for ``request`` (text, chunks, silences, warnings),
        with nothing announced to the scheduler: ``POST /text/preview``."""
        if request.request_id is None:
            request.request_id = current_request_id()
        return await self._prepare(request)

    async def _prepare(self, request: SpeechRequest) -> PreparedSpeech:
        backend_name = self.resolve_backend(request.model)
        backend = self.backends[backend_name]
        check_output_rate(self.encoder(request.response_format), request.sample_rate)
        check_language(request.language)
        caps = backend.capabilities
        text = request.text.strip()
        if not text:
            raise InvalidInput("text is empty; send the words to speak in 'text' or 'input'",
                               param="input", code="empty_input")
        limit = self.settings.generation.max_text_chars
        if len(text) > limit:
            raise InvalidInput(
                f"text is {len(text)} characters; the limit is {limit} "
                "(generation.max_text_chars)", param="input", code="string_above_max_length")
        ssml, speed = None, request.speed
        if request.input_format == "ssml" or (request.input_format is None and is_ssml(text)):
            ssml = parse_ssml(text, request.language)
            if ssml.rate is not None:  # <prosody rate> around the whole document
                speed = round(speed * ssml.rate, 4)
        check_speed(speed)  # buffered and streamed alike, before queueing
        options, option_notes = decode_options(backend_name, backend.options,
                                               request.options, request.flat_options)
        # Voice stores may read files or a database: never on the event loop.
        voice = await self._voice(request.voice_id.strip())
        if voice.backends and backend_name not in voice.backends:
            raise InvalidInput(
                f"voice '{voice.voice_id}' works with {', '.join(voice.backends)}, "
                f"not '{backend_name}'", param="voice", code="invalid_value")
        ctx = TextContext(role=request.role, voice=voice, backend=backend_name,
                          speaker_tags=caps.speaker_tags, speakers=caps.speakers,
                          language=request.language,
                          normalize=request.normalize, chat_text=request.chat_text)
        ctx.warnings.extend(option_notes)
        answered = {pre.request_option for pre in self.preprocessors}
        for option, hint in TEXT_OPTIONS.items():
            if getattr(request, option) and option not in answered:
                ctx.warnings.append(f"'{option}' was asked for but no loaded text "
                                    f"preprocessor does it: {hint}")
        if request.language and not _speaks(caps.languages, request.language):
            ctx.warnings.append(
                f"backend '{backend_name}' does not list language '{request.language}' "
                f"(it lists {', '.join(caps.languages)}); the text is spoken anyway")
        lead = 0.0
        with self.tracing.span("ttsframe.preprocess", **{"ttsframe.backend": backend_name}):
            if ssml is None:
                pieces = [(self.preprocess(text, ctx), 0.0)]
            else:
                ctx.warnings.extend(ssml.warnings)
                pieces = []
                for segment in ssml.segments:
                    if not segment.text:  # a break before any text
                        lead += segment.pause_s
                        continue
                    said = (f"[{segment.speaker}] {segment.text}"
                            if segment.speaker and caps.speaker_tags else segment.text)
                    pieces.append((self.preprocess(said, ctx), segment.pause_s))
        text = " ".join(piece for piece, _ in pieces)
        params = request.params
        if params.seed is None and not params.greedy:
            # Every sampled take has a known seed (the voice's, else a fresh one): the
            # reply names it (X-Seed) and sending it back reproduces the take. It is
            # fixed on the request too, so a stored job run again gives the same take.
            seed = voice.seed if voice.seed is not None else secrets.randbelow(2**32)
            params = msgspec.structs.replace(params, seed=seed)
            request.params = params
        prompt = None
        if voice.audio_prompt:
            if not caps.supports_cloning:
                raise InvalidInput(f"backend '{backend_name}' cannot clone voices; "
                                   f"voice '{voice.voice_id}' needs an audio prompt",
                                   param="voice", code="invalid_value")
            try:
                prompt = await anyio.to_thread.run_sync(self.voices.load_prompt,
                                                        voice.audio_prompt)
            except NotFound as exc:  # about the voice the request named
                raise NotFound(f"{exc.message} (the audio prompt of voice "
                               f"'{voice.voice_id}')", param="voice",
                               code="voice_not_found") from None
        transcript = voice.audio_prompt_transcript if prompt is not None else None
        task = SynthesisTask(task_id=uuid.uuid4().hex, text=text, params=params,
                             options=options, prompt=prompt,
                             prompt_transcript=voice.audio_prompt_transcript,
                             voice_id=voice.voice_id, language=request.language)
        budget = self.chunk_bytes(backend_name, caps, prompt, transcript)
        planned_pieces = split_pieces(pieces, budget, caps.speaker_tags)
        chunks = [chunk for chunk, _ in planned_pieces]
        most = self.settings.generation.max_generations
        continued = False
        if request.captions is not None:
            if request.captions not in CAPTION_FORMATS:
                raise InvalidInput(f"captions '{request.captions}' is not a format; use one "
                                   f"of {', '.join(CAPTION_FORMATS)}")
            planned_pieces = []
            for piece, pause in pieces:  # each piece's sentences, its pause after the last
                sentences = sentence_chunks(piece, budget, tag_speakers=caps.speaker_tags)
                planned_pieces += [(s, 0.0) for s in sentences[:-1]] + [(sentences[-1], pause)]
            chunks = [chunk for chunk, _ in planned_pieces]
        if len(chunks) > 1 and prompt is None and caps.supports_cloning and (
                self.settings.generation.chunk_continuity if params.chunk_continuity is None
                else params.chunk_continuity):
            unable = None
            try:
                planned = (self.check_continued(backend, task, planned_pieces)
                           if request.captions is not None
                           else self.continuity_chunks(backend_name, backend, task, budget,
                                                       pieces))
            except InvalidInput as exc:  # the backend cannot take this plan
                unable = exc.message
            else:
                if len(planned) <= most or len(chunks) > most:
                    planned_pieces, continued = planned, True
                    chunks = [chunk for chunk, _ in planned]
                    unanchored = [s for s in speakers_of(text)
                                  if s not in speakers_of(chunks[0])]
                    if unanchored:
                        ctx.warnings.append(
                            f"the first chunk, whose audio the later chunks are cloned "
                            f"from, holds no turn of {', '.join(unanchored)} (its first "
                            "words come too late to fit in it), so that voice may change "
                            "between chunks")
                else:
                    unable = (f"that would take {len(planned)} generations, more than "
                              f"generation.max_generations ({most})")
            if unable:
                ctx.warnings.append(f"each chunk is generated on its own (the voice may "
                                    f"change between chunks): {unable}")
        if len(chunks) > most:
            raise InvalidInput(
                f"text is {len(text.encode())} bytes of UTF-8, which takes {len(chunks)} "
                f"generations of backend '{backend_name}'; the limit is {most} "
                "(generation.max_generations): send a shorter text")
        # The backend's own limits, before anything is queued (an async job is then never
        # accepted only to fail): each generation it will run is checked.
        if not continued:  # (continuity_chunks checked its own)
            for chunk in chunks:
                backend.check(task if chunk == text
                              else msgspec.structs.replace(task, text=chunk))
        pauses = [pause for _, pause in planned_pieces]
        return PreparedSpeech(task, backend_name, voice, request,
                              [*request.notes, *_unique(ctx.warnings)], chunks,
                              continued=continued,
                              pauses=pauses if any(pauses) or lead else [], lead_s=lead,
                              speed=speed, checked=self.quality.wanted(request.quality))

    def preprocess(self, text: str, ctx: TextContext) -> str:
        """``text`` through every text preprocessor, in order."""
        for pre in self.preprocessors:
            text = pre.process(text, ctx)
        return text

    def continuity_chunks(self, backend_name: str, backend: Backend, task: SynthesisTask,
                          budget: int, pieces: list[tuple[str, float]] | None = None,
                          ) -> list[tuple[str, float]]:
        """Chunks for a long text whose later chunks are conditioned on the first.

        The first chunk is short (a sentence or two: ``FIRST_CHUNK_BYTES``, at most half
        the usual size), since its audio becomes a prompt that takes decoder room and its
        text a transcript that takes text room; the rest are sized as for a
        cloned voice whose prompt is that chunk, its audio estimated from its length.
        Each generation is checked with the backend, the later ones behind that estimate.
        ``pieces`` (text, silence after) are kept apart, as SSML's breaks and paragraphs
        ask; the chunks come back with the silence after each.
        """
        caps = backend.capabilities
        pieces = pieces or [(task.text, 0.0)]
        first_bytes = max(MIN_CHUNK_BYTES, min(FIRST_CHUNK_BYTES, budget // 2))
        # The first chunk's audio is the later chunks' prompt: it holds every speaker's
        # first words when they fit in a chunk, so each voice is anchored.
        first, rest = split_first_speakers(pieces[0][0], first_bytes, budget,
                                           tag_speakers=caps.speaker_tags)
        estimate = AudioPrompt(
            "first-chunk-estimate",
            np.zeros(int(_speech_seconds(first) * caps.sample_rate), np.float32),
            caps.sample_rate)
        later = self.chunk_bytes(backend_name, caps, estimate, first)
        planned = [(first, 0.0 if rest.strip() else pieces[0][1])]
        if rest.strip():
            planned += split_pieces([(rest, pieces[0][1])], later, caps.speaker_tags)
        planned += split_pieces(pieces[1:], later, caps.speaker_tags)
        replace = msgspec.structs.replace
        backend.check(replace(task, text=first))
        for chunk, _ in planned[1:]:
            backend.check(replace(task, text=chunk, prompt=estimate, prompt_transcript=first))
        return planned

    def check_continued(self, backend: Backend, task: SynthesisTask,
                        planned: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``planned`` as it is (a captioned text's sentences and pauses), checked with
        the backend as ``continuity_chunks`` checks its own: the later chunks behind the
        first's estimated audio."""
        chunks = [chunk for chunk, _ in planned]
        caps = backend.capabilities
        estimate = AudioPrompt(
            "first-chunk-estimate",
            np.zeros(int(_speech_seconds(chunks[0]) * caps.sample_rate), np.float32),
            caps.sample_rate)
        replace = msgspec.structs.replace
        backend.check(replace(task, text=chunks[0]))
        for chunk in chunks[1:]:
            backend.check(replace(task, text=chunk, prompt=estimate,
                                  prompt_transcript=chunks[0]))
        return planned

    def continue_voice(self, prepared: PreparedSpeech, later: list[SynthesisTask],
                       first: SynthesisResult) -> None:
        """Give the later chunks the first chunk's audio and text as their prompt and
        transcript, exactly as a cloned voice's, so they speak in the voice the first
        chunk found. Runs when the first chunk is done, before the rest are queued
        (``Scheduler.submit_parts``). When its audio cannot serve, they run on their own
        and the reply says why."""
        backend = self.backends[prepared.backend]
        caps = backend.capabilities
        samples = np.asarray(first.samples, dtype=np.float32)
        seconds = samples.size / first.sample_rate
        prompt = AudioPrompt(f"{prepared.task.task_id}.0", samples, first.sample_rate,
                             transient=True)
        transcript = prepared.chunks[0]
        longest = max(_speech_seconds(task.text) for task in later)
        holds = (caps.max_decoder_steps / caps.frames_per_second
                 if caps.max_decoder_steps and caps.frames_per_second else None)
        reason = None
        if samples.size == 0:
            reason = "the first chunk's audio is empty"
        elif first.info.get("budget_limited"):
            reason = "the first chunk's audio was cut short, so it does not match its text"
        elif holds is not None and seconds + longest > holds:
            reason = (f"the first chunk's audio ({seconds:.1f} s) leaves the model too little "
                      "room for the next chunks")
        else:
            try:
                for task in later:
                    backend.check(msgspec.structs.replace(task, prompt=prompt,
                                                          prompt_transcript=transcript))
            except InvalidInput as exc:
                reason = exc.message
        if reason is not None:
            prepared.task.notes.append(f"the chunks after the first were generated on their "
                                       f"own (the voice may change between chunks): {reason}")
            return
        for task in later:
            task.prompt, task.prompt_transcript = prompt, transcript

    @staticmethod
    def chunk_bytes(backend: str, caps: Capabilities, prompt: AudioPrompt | None,
                    transcript: str | None) -> int:
        """How much text one generation gets: the backend's preferred size, shrunk in
        proportion to the decoder steps an audio prompt takes, and never more than the
        backend holds once the prompt's transcript is prepended."""
        hard = caps.max_text_bytes
        if transcript:
            hard -= len(transcript.encode()) + 1
            if hard < MIN_CHUNK_BYTES:
                raise InvalidInput(
                    f"the voice's prompt transcript is {len(transcript.encode())} bytes; "
                    f"backend '{backend}' reads at most {caps.max_text_bytes} bytes per "
                    "generation including the transcript, which leaves no room for text: "
                    "shorten audio_prompt_transcript")
        budget = caps.preferred_text_bytes or hard
        if (prompt is not None and caps.preferred_text_bytes and caps.max_decoder_steps
                and caps.frames_per_second):
            frames = prompt.samples.shape[-1] / prompt.sample_rate * caps.frames_per_second
            budget = int(budget * max(0.0, 1.0 - frames / caps.max_decoder_steps))
        return min(max(budget, MIN_CHUNK_BYTES), hard)

    def part_tasks(self, prepared: PreparedSpeech) -> list[SynthesisTask]:
        """The tasks that generate ``prepared``: its own task, or one per text chunk with
        the same voice, prompt, transcript, parameters (seed included) and cancel token."""
        task = prepared.task
        if len(prepared.chunks) <= 1:
            return [task]
        progress = _PartsProgress(task, len(prepared.chunks))
        # Chunks that can share a batch carry their largest size (the short first chunk
        # of a continued text runs alone, so it keeps its own).
        batched = prepared.chunks[1:] if prepared.continued else prepared.chunks
        largest = max(len(chunk.encode()) for chunk in batched)
        return [
            SynthesisTask(task_id=f"{task.task_id}.{i}", text=chunk, params=task.params,
                          options=task.options,
                          prompt=task.prompt, prompt_transcript=task.prompt_transcript,
                          cancel=task.cancel, on_progress=partial(progress.update, i),
                          voice_id=task.voice_id, language=task.language,
                          text_bytes_hint=None if prepared.continued and i == 0 else largest)
            for i, chunk in enumerate(prepared.chunks)
        ]

    def submit(self, prepared: PreparedSpeech,
               tasks: list[SynthesisTask] | None = None) -> Ticket:
        """Queue the request's tasks (``part_tasks`` unless given); one ticket for all."""
        tasks = tasks if tasks is not None else self.part_tasks(prepared)
        reviews = None
        if prepared.checked:
            reviews = [self.quality.reviewer(PartReview(prepared.backend, i, len(tasks),
                                                        prepared.watch))
                       for i in range(len(tasks))]
        try:
            if len(tasks) == 1 and tasks[0] is prepared.task:
                return self.scheduler.submit(prepared.backend, prepared.task,
                                             reviews[0] if reviews else None)
            after_first = (partial(self.continue_voice, prepared, tasks[1:])
                           if prepared.continued else None)
            return self.scheduler.submit_parts(prepared.backend, prepared.task, tasks,
                                               join_results, after_first, reviews)
        finally:
            self.scheduler.end_announcement(prepared.announcement)

    def _stream(self, prepared: PreparedSpeech, ticket: Ticket, pipeline: OutputPipeline,
                on_end=None) -> SpeechStream:
        return SpeechStream(prepared=prepared, scheduler=self.scheduler, ticket=ticket,
                            pipeline=pipeline, loop=asyncio.get_running_loop(), on_end=on_end)

    def _pipeline(self, prepared: PreparedSpeech, *, whole: bool) -> OutputPipeline:
        request = prepared.request
        silences = sum(1 for pause in prepared.pauses if pause) + (prepared.lead_s > 0)
        return OutputPipeline(self.encoder(request.response_format),
                              self.backends[prepared.backend].capabilities.sample_rate,
                              prepared.speed, parts=len(prepared.chunks) + silences,
                              whole=whole, keep=self.settings.logging.save_outputs,
                              out_rate=request.sample_rate)

    def speech_output(self, stream: SpeechStream, data: bytes = b"") -> SpeechOutput:
        """The reply's description: up front (the stream's ``head``: no audio, duration or
        tokens yet), or at the end with the audio and every part's notes (and, when the
        request asked for them, its captions in ``X-Captions``, base64)."""
        prepared, pipeline = stream.prepared, stream.pipeline
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

    def _log_warnings(self, prepared: PreparedSpeech, output: SpeechOutput) -> None:
        for warning in output.warnings:
            log.warning("request %s: %s", prepared.task.task_id, warning)

    async def finish(self, prepared: PreparedSpeech, ticket: Ticket) -> SpeechOutput:
        """The whole reply of a submitted request (buffered replies and jobs): its stream
        drained into one file; raises the generation's failure."""
        request = prepared.request
        stream = self._stream(prepared, ticket, self._pipeline(prepared, whole=True))
        await stream.drain()
        with self.tracing.span("ttsframe.encode", **{"ttsframe.format": request.response_format}):
            data = await anyio.to_thread.run_sync(stream.pipeline.finish)
        # Shielded: a caller that gives up must not cancel the ticket's future itself, or
        # the scheduler would take the task as settled and let it run on. Once it is
        # settled, the ticket's timings and batch size are final.
        await asyncio.shield(ticket.future)
        output = self.speech_output(stream, data)
        self._log_warnings(prepared, output)
        return output

    async def synthesize(self, request: SpeechRequest) -> SpeechOutput:
        prepared = await self.prepare(request)
        ticket = self.submit(prepared)
        try:
            output = await self.finish(prepared, ticket)
        except BaseException as exc:
            if self.scheduler.cancel(prepared.task.task_id, "request abandoned",
                                     cause_of_stop(exc)):
                ticket.future.add_done_callback(_retrieve)
            await asyncio.shield(self.notify(GenerationEvent(prepared, ticket, error=exc)))
            raise
        await self.notify(GenerationEvent(prepared, ticket, output=output))
        output.headers["X-Batch-Size"] = str(ticket.batch_size)
        return output

    async def open_stream(self, request: SpeechRequest) -> SpeechStream:
        """Start a streamed generation; return once its first bytes are ready, so that
        everything that fails before any audio is an ordinary error reply. The stream
        carries the request (``prepared``) and what its headers say (``head``)."""
        return await self.stream_prepared(await self.prepare(request))

    async def stream_prepared(self, prepared: PreparedSpeech,
                              tasks: list[SynthesisTask] | None = None) -> SpeechStream:
        """``open_stream`` for a request already prepared, with its tasks when the caller
        set them up (a live session gives later segments its first segment's voice)."""
        pipeline = self._pipeline(prepared, whole=False)
        tasks = tasks if tasks is not None else self.part_tasks(prepared)
        ticket = self.submit(prepared, tasks)  # 429 / 503 before anything is sent
        stream = self._stream(prepared, ticket, pipeline, on_end=self._stream_ended)
        stream.head = self.speech_output(stream)  # what the reply's headers say
        # No await since submit: the dispatcher cannot have started a task yet.
        for index, task in enumerate(tasks):
            task.on_audio = stream.audio_callback(index)
        prepared.watch.claim = stream.hold_part  # retried takes replace held audio only
        if prepared.checked:  # a runaway take is not streamed past its slowest rate
            stream.limits = [self.quality.stream_limit(prepared.backend, task, pipeline.rate)
                             for task in tasks]
        self.open_streams[prepared.backend] += 1  # until _stream_ended, however it ends
        await stream.start()
        return stream

    async def _stream_ended(self, stream: SpeechStream, error: BaseException | None) -> None:
        """Report a stream that ended to the observers (the generation log)."""
        prepared, ticket, pipeline = stream.prepared, stream.ticket, stream.pipeline
        self.open_streams[prepared.backend] -= 1
        if error is not None:
            await self.notify(GenerationEvent(prepared, ticket, error=error,
                                              streamed_bytes=pipeline.bytes_out))
            return
        data = b""
        if pipeline.kept is not None:  # logging.save_outputs: keep a whole file
            data = await anyio.to_thread.run_sync(pipeline.whole_file)
        output = self.speech_output(stream, data)
        self._log_warnings(prepared, output)
        await self.notify(GenerationEvent(prepared, ticket, output=output,
                                          streamed_bytes=pipeline.bytes_out))

    async def notify(self, event: GenerationEvent) -> None:
        """Tell every observer; an observer's failure is logged, never the caller's."""
        for observer in self.observers:
            try:
                await observer(event)
            except Exception:
                log.exception("generation observer %r failed", observer)


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


class _PartsProgress:
    """Progress of a split request: the mean of its parts' progress, out of 1000."""

    def __init__(self, task: SynthesisTask, parts: int) -> None:
        self.task = task
        self.done = [0.0] * parts

    def update(self, index: int, done: int, total: int) -> None:
        self.done[index] = min(done / total, 1.0) if total else 0.0
        if self.task.on_progress is not None:
            self.task.on_progress(round(1000 * sum(self.done) / len(self.done)), 1000)


def _speech_seconds(text: str) -> float:
    """About how long ``text`` takes to speak, on the long side."""
    return len(text.encode()) / SPEECH_BYTES_PER_SECOND


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Request options a text preprocessor answers to, and where to get one that does.
TEXT_OPTIONS = {
    "normalize": "enable the built-in 'normalize' plugin",
    "chat_text": "install the chat-text plugin (pip install -e "
                 "plugins_contrib/ttsframe-chattext) and restart",
}

# A language code: "en", "de", "zh-cn", "pt_BR", "sr-Latn-RS". Nothing longer or
# stranger reaches a backend, a warning header or the log.
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,2}")


def check_output_rate(encoder: Encoder, rate: int | None) -> None:
    """A requested output rate the format can carry as asked (opus is always 48 kHz;
    mp3 and aac have fixed rate lists)."""
    if rate is None:
        return
    if not MIN_OUTPUT_RATE <= rate <= MAX_OUTPUT_RATE:
        raise InvalidInput(f"sample_rate must be between {MIN_OUTPUT_RATE} and "
                           f"{MAX_OUTPUT_RATE} Hz, got {rate}", param="sample_rate",
                           code="invalid_value")
    actual = encoder.output_rate(rate)
    if actual != rate:
        raise InvalidInput(
            f"response_format '{encoder.format}' cannot be encoded at {rate} Hz (it would "
            f"be {actual} Hz); ask for sample_rate {actual}, leave sample_rate out, or use "
            "pcm, wav or flac, which take any rate", param="sample_rate",
            code="invalid_value")


def check_language(language: str | None) -> None:
    if language and not LANGUAGE_CODE.fullmatch(language):
        shown = language[:20] + ("..." if len(language) > 20 else "")
        raise InvalidInput(
            f"language {shown!r} is not a language code; send a short code such as "
            "'en', 'de' or 'zh-cn'")


def _speaks(languages: tuple[str, ...], language: str) -> bool:
    """``en-us`` is spoken by a backend listing ``en`` (or ``en-us``), case aside."""
    wanted = language.lower().replace("_", "-")
    listed = {lang.lower() for lang in languages}
    return wanted in listed or wanted.split("-")[0] in listed



def split_pieces(pieces: list[tuple[str, float]], budget: int,
                 tag_speakers: bool) -> list[tuple[str, float]]:
    """Each piece's text in chunks of at most ``budget`` bytes (split at turns,
    sentences, clauses, words), the piece's silence after its last chunk."""
    planned: list[tuple[str, float]] = []
    for text, pause in pieces:
        parts = (chunk_text(text, budget, tag_speakers=tag_speakers)
                 if len(text.encode()) > budget else [text])
        planned += [(part, 0.0) for part in parts[:-1]] + [(parts[-1], pause)]
    return planned


def sentence_chunks(text: str, budget: int, *, tag_speakers: bool) -> list[str]:
    """A captioned text: one chunk per sentence (``core/segmenter.py``'s rules, speaker
    tags carried), a sentence over ``budget`` bytes split as a long text is."""
    segmenter = Segmenter(clause_chars=10**9, max_chars=max(16, budget))
    out: list[str] = []
    for sentence in [*segmenter.feed(text), *segmenter.flush()]:
        if len(sentence.encode()) > budget:
            out += chunk_text(sentence, budget, tag_speakers=tag_speakers)
        else:
            out.append(sentence)
    return out or [text]
