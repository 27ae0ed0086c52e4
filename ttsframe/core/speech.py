"""The request path after HTTP: preprocess -> voice -> scheduler -> post-process -> encode.

Each step is owned by one collaborator injected at startup; this module only orders them.
Blocking work (prompt loading, time-stretching, encoding) runs in threads so the event
loop keeps answering ``/health`` and job polls during generation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread

from ttsframe.core import audio
from ttsframe.core.config import Settings
from ttsframe.core.errors import InvalidInput
from ttsframe.core.interfaces import Backend, Encoder, TextContext, TextPreprocessor, VoiceStore
from ttsframe.core.scheduler import Scheduler, Ticket
from ttsframe.core.types import SpeechOutput, SpeechRequest, SynthesisResult, SynthesisTask, Voice

log = logging.getLogger("ttsframe.speech")

# Model names OpenAI-style clients send; they mean "the default backend".
OPENAI_MODEL_ALIASES = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts",
                                  "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts-2025-12-15"})


@dataclass
class PreparedSpeech:
    """Everything decided before the scheduler: the task and how to finish it."""

    task: SynthesisTask
    backend: str
    voice: Voice
    request: SpeechRequest
    warnings: list[str]


@dataclass
class GenerationEvent:
    """One generation that ended (completed, failed or cancelled), for observers such as
    the generation log. ``job_id`` is set for asynchronous jobs."""

    prepared: PreparedSpeech
    ticket: Ticket
    output: SpeechOutput | None = None
    error: BaseException | None = None
    job_id: str | None = None


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

    def resolve_backend(self, model: str | None) -> str:
        default = self.settings.generation.default_backend
        if model is None or model == "" or model in OPENAI_MODEL_ALIASES:
            return default
        if model in self.backends:
            return model
        raise InvalidInput(
            f"Model '{model}' not found; available models: {', '.join(sorted(self.backends))}")

    def encoder(self, fmt: str) -> Encoder:
        encoder = self.encoders.get(fmt.lower())
        if encoder is None:
            raise InvalidInput(
                f"unsupported response_format '{fmt}'; supported formats: "
                f"{', '.join(sorted(self.encoders))}")
        return encoder

    async def prepare(self, request: SpeechRequest) -> PreparedSpeech:
        """Validate and build the task; every 4xx is raised here, before queueing."""
        backend_name = self.resolve_backend(request.model)
        backend = self.backends[backend_name]
        self.encoder(request.response_format)
        caps = backend.capabilities
        text = request.text.strip()
        if not text:
            raise InvalidInput("text is empty; send the words to speak in 'text' or 'input'")
        limit = self.settings.generation.max_text_chars
        if len(text) > limit:
            raise InvalidInput(
                f"text is {len(text)} characters; the limit is {limit} "
                "(generation.max_text_chars)")
        voice = self.voices.get_voice(request.voice_id.strip())
        if voice.backends and backend_name not in voice.backends:
            raise InvalidInput(
                f"voice '{voice.voice_id}' works with {', '.join(voice.backends)}, "
                f"not '{backend_name}'")
        ctx = TextContext(role=request.role, voice=voice, backend=backend_name,
                          speaker_tags=caps.speaker_tags)
        if request.language and not _speaks(caps.languages, request.language):
            ctx.warnings.append(
                f"backend '{backend_name}' does not list language '{request.language}' "
                f"(it lists {', '.join(caps.languages)}); the text is spoken anyway")
        for pre in self.preprocessors:
            text = pre.process(text, ctx)
        if len(text.encode()) > caps.max_text_bytes:
            raise InvalidInput(
                f"text is {len(text.encode())} bytes after processing; backend "
                f"'{backend_name}' accepts at most {caps.max_text_bytes} bytes per request")
        params = request.params
        if params.seed is None and voice.seed is not None:
            params = type(params)(**{**_fields(params), "seed": voice.seed})
        prompt = None
        if voice.audio_prompt:
            if not caps.supports_cloning:
                raise InvalidInput(f"backend '{backend_name}' cannot clone voices; "
                                   f"voice '{voice.voice_id}' needs an audio prompt")
            prompt = await anyio.to_thread.run_sync(self.voices.load_prompt, voice.audio_prompt)
        task = SynthesisTask(task_id=uuid.uuid4().hex, text=text, params=params, prompt=prompt,
                             prompt_transcript=voice.audio_prompt_transcript,
                             voice_id=voice.voice_id, language=request.language)
        return PreparedSpeech(task, backend_name, voice, request,
                              [*request.notes, *ctx.warnings])

    def submit(self, prepared: PreparedSpeech) -> Ticket:
        return self.scheduler.submit(prepared.backend, prepared.task)

    async def finish(self, prepared: PreparedSpeech, result: SynthesisResult) -> SpeechOutput:
        """Speed change and encoding, off the event loop."""
        request = prepared.request
        encoder = self.encoder(request.response_format)

        def work() -> tuple[bytes, float]:
            samples = result.samples
            if request.speed != 1.0:
                samples = audio.time_stretch(samples, result.sample_rate, request.speed)
            return encoder.encode(samples, result.sample_rate), len(samples) / result.sample_rate

        data, duration = await anyio.to_thread.run_sync(work)
        warnings = [*prepared.warnings, *prepared.task.notes, *result.notes]
        for warning in warnings:
            log.warning("request %s: %s", prepared.task.task_id, warning)
        return SpeechOutput(audio=data, content_type=encoder.content_type,
                            sample_rate=encoder.output_rate(result.sample_rate),
                            headers=encoder.response_headers(result.sample_rate),
                            duration_s=duration,
                            text=prepared.task.text, voice_id=prepared.voice.voice_id,
                            backend=prepared.backend, tokens=result.tokens, warnings=warnings)

    async def synthesize(self, request: SpeechRequest) -> SpeechOutput:
        prepared = await self.prepare(request)
        ticket = self.submit(prepared)
        try:
            result = await ticket.future
            output = await self.finish(prepared, result)
        except BaseException as exc:
            self.scheduler.cancel(prepared.task.task_id, "request abandoned")
            await asyncio.shield(self.notify(GenerationEvent(prepared, ticket, error=exc)))
            raise
        await self.notify(GenerationEvent(prepared, ticket, output=output))
        return output

    async def notify(self, event: GenerationEvent) -> None:
        """Tell every observer; an observer's failure is logged, never the caller's."""
        for observer in self.observers:
            try:
                await observer(event)
            except Exception:
                log.exception("generation observer %r failed", observer)


def _speaks(languages: tuple[str, ...], language: str) -> bool:
    """``en-us`` is spoken by a backend listing ``en`` (or ``en-us``), case aside."""
    wanted = language.lower().replace("_", "-")
    listed = {lang.lower() for lang in languages}
    return wanted in listed or wanted.split("-")[0] in listed


def _fields(struct) -> dict:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}
