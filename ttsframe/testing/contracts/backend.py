"""What every backend must do, as tests an author runs against their own backend.

    from ttsframe.testing.contracts import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self):
            return MyBackend(MyConfig())   # a new, unloaded instance

Class attributes tune the suite to the backend (see :class:`BackendContract`).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import numpy as np
import pytest

from ttsframe.core.errors import CancelCause, Cancelled, InvalidInput, NotFound
from ttsframe.core.interfaces.backend import Backend
from ttsframe.core.interfaces.hookspecs import hookimpl
from ttsframe.core.interfaces.speech_types import GenerationParams, SpeechRequest
from ttsframe.core.interfaces.synthesis import (
    BackendOptions,
    Capabilities,
    SynthesisResult,
    SynthesisTask,
)
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.speech.chunking import part_tasks
from ttsframe.core.speech.options import option_schema
from ttsframe.core.speech.service import SpeechService
from ttsframe.core.voices.voice import AudioPrompt, Voice


def make_task(text: str, *, params: GenerationParams | None = None, options: Any = None,
              prompt: AudioPrompt | None = None, prompt_transcript: str | None = None,
              voice_id: str | None = None, language: str | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              on_audio: Callable[[np.ndarray], None] | None = None) -> SynthesisTask:
    """A task as the scheduler hands it to ``Backend.generate``."""
    return SynthesisTask(task_id=uuid.uuid4().hex, text=text,
                         params=params or GenerationParams(),
                         options=BackendOptions() if options is None else options,
                         prompt=prompt, prompt_transcript=prompt_transcript, voice_id=voice_id,
                         language=language, on_progress=on_progress, on_audio=on_audio)


class _OneVoiceStore(VoiceStore):
    """Just enough store for ``SpeechService.prepare``: one voice, one prompt."""

    name = "contract"

    def __init__(self, voice: Voice, prompt: AudioPrompt | None = None) -> None:
        self.voice, self.prompt = voice, prompt

    def list_voices(self) -> list[Voice]:
        return [self.voice]

    def get_voice(self, voice_id: str) -> Voice:
        if voice_id != self.voice.voice_id:
            raise NotFound(f"Voice '{voice_id}' not found")
        return self.voice

    def load_prompt(self, prompt_id: str) -> AudioPrompt:
        if self.prompt is None or prompt_id != self.prompt.prompt_id:
            raise NotFound(f"Audio prompt '{prompt_id}' not found")
        return self.prompt


class _ContractFeed:
    """A ``TaskFeed``: ``tasks`` at once, ``later`` once the first was taken; closed
    when every task is answered."""

    def __init__(self, tasks: list[SynthesisTask], later: list[SynthesisTask]) -> None:
        self.waiting, self.later = list(tasks), list(later)
        self.total = len(tasks) + len(later)
        self.outcomes: dict[str, object] = {}
        self.answered: list[str] = []
        self.cond = threading.Condition()

    @property
    def closed(self) -> bool:
        return len(self.answered) >= self.total

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        with self.cond:
            while block and not self.waiting and not self.closed:
                self.cond.wait(0.05)
            taken, self.waiting[:limit] = self.waiting[:limit], []
            if taken and self.later:
                self.waiting, self.later = self.later, []
            return taken

    def done(self, task: SynthesisTask, outcome: object) -> None:
        with self.cond:
            self.outcomes[task.task_id] = outcome
            self.answered.append(task.task_id)
            self.cond.notify_all()


class BackendContract:
    """Subclass it and provide a ``backend`` fixture returning a new, unloaded backend.

    Attributes a subclass may override:

    * ``text``: what to speak (a leading ``[S1]`` is added for speaker-tag backends, as
      the core's preprocessors would);
    * ``params``: the shared generation parameters for every call;
    * ``options``: the backend's own options for every call, by name as a request sends
      them (e.g. Dia's ``{"max_tokens": 100}``), decoded into its ``Backend.options``;
    * ``duration_grows_with_text``: set ``False`` when output length does not follow the
      text (random test weights);
    * ``prompt_seconds``: length of the audio prompt used when the backend clones.
    """

    text = "Hello there. This is a short test of a speech backend."
    longer_text = ("Hello there. This is a much longer test of a speech backend, with several "
                   "clauses, a few more sentences, and enough words that any backend which "
                   "speaks them all must produce clearly more audio than for the short one.")
    params = GenerationParams()
    options: dict[str, Any] = {}
    duration_grows_with_text = True
    prompt_seconds = 2.0

    @pytest.fixture
    def backend(self) -> Backend:
        pytest.fail(f"{type(self).__name__} must define a `backend` fixture returning a new, "
                    "unloaded instance of the backend under test")

    @pytest.fixture
    def loaded(self, backend: Backend):
        backend.load()
        yield backend
        backend.close()

    # ------------------------------------------------------------------ helpers

    def spoken(self, backend: Backend, text: str | None = None) -> str:
        text = self.text if text is None else text
        return f"[S1] {text}" if backend.capabilities.speaker_tags else text

    def task(self, backend: Backend, text: str | None = None, **kw) -> SynthesisTask:
        return make_task(self.spoken(backend, text), params=self.params,
                         options=msgspec.convert(self.options, backend.options), **kw)

    def generate_one(self, backend: Backend, task: SynthesisTask) -> SynthesisResult:
        results = backend.generate([task])
        assert len(results) == 1, f"generate returned {len(results)} entries for 1 task"
        result = results[0]
        if isinstance(result, BaseException):
            raise AssertionError(f"generate failed the task: {result!r}") from result
        return result

    def check_audio(self, backend: Backend, result: SynthesisResult) -> None:
        caps = backend.capabilities
        assert isinstance(result, SynthesisResult)
        assert isinstance(result.samples, np.ndarray)
        assert result.samples.dtype == np.float32, f"samples are {result.samples.dtype}"
        assert result.samples.ndim == 1, f"samples have shape {result.samples.shape}, not mono"
        assert result.sample_rate == caps.sample_rate, (
            f"result is at {result.sample_rate} Hz; capabilities declare {caps.sample_rate}")
        assert len(result.samples) > 0, "no audio"
        assert np.all(np.isfinite(result.samples)), "samples contain NaN or inf"
        assert float(np.max(np.abs(result.samples))) <= 1.0, "samples exceed [-1, 1]"

    def service(self, tmp_path: Path, backend: Backend, store: VoiceStore) -> SpeechService:
        """The real request path (built-in preprocessors included) over this backend."""
        from ttsframe.testing.app import make_services

        def register_backends(register):
            register("under-test", lambda ctx: backend)

        def register_voice_stores(register):
            register("under-test", lambda ctx: store)

        plugin = SimpleNamespace(register_backends=hookimpl(register_backends),
                                 register_voice_stores=hookimpl(register_voice_stores))
        config = {"generation": {"default_backend": "under-test", "voice_store": "under-test",
                                 "max_text_chars": 1_000_000}}
        return make_services(tmp_path, config, plugins={"contract": plugin}).speech

    # ------------------------------------------------------------------ capabilities

    def test_name_is_set(self, backend: Backend):
        assert isinstance(backend.name, str) and backend.name

    def test_capabilities_are_known_before_load_and_consistent(self, backend: Backend):
        caps = backend.capabilities
        assert isinstance(caps, Capabilities)
        assert isinstance(caps.sample_rate, int) and 8000 <= caps.sample_rate <= 192000
        assert caps.max_text_bytes > 0
        assert caps.max_batch_size >= 1
        assert caps.supports_batching or caps.max_batch_size == 1, (
            "max_batch_size > 1 but supports_batching is False")
        assert caps.languages and all(isinstance(x, str) and x for x in caps.languages)

    def test_options_are_declared_with_defaults(self, backend: Backend):
        """``Backend.options`` is a Struct whose every option has a default (a request
        sends only some), hashable (a batch key may hold it), with a JSON schema
        (``/models``)."""
        options = backend.options
        assert isinstance(options, type) and issubclass(options, msgspec.Struct)
        required = [f.name for f in msgspec.structs.fields(options) if f.required]
        assert not required, f"options without a default: {required}"
        hash(options())
        assert option_schema(options)["type"] == "object"
        msgspec.convert(self.options, options)

    def test_describe_is_json(self, loaded: Backend):
        msgspec.json.encode(loaded.describe())

    # ------------------------------------------------------------------ generation

    def test_generate_returns_float32_mono_at_declared_rate(self, loaded: Backend):
        self.check_audio(loaded, self.generate_one(loaded, self.task(loaded)))

    def test_generate_returns_one_entry_per_task_in_order(self, loaded: Backend):
        caps = loaded.capabilities
        tasks = [self.task(loaded, f"Number {i}. {self.text}")
                 for i in range(min(3, caps.max_batch_size))]
        keys = {loaded.batch_key(t) for t in tasks}
        if len(keys) > 1:  # the scheduler only batches tasks with equal keys
            tasks = tasks[:1]
        results = loaded.generate(tasks)
        assert len(results) == len(tasks)
        for result in results:
            assert not isinstance(result, BaseException), repr(result)
            self.check_audio(loaded, result)

    def test_more_text_gives_more_audio(self, loaded: Backend):
        if not self.duration_grows_with_text:
            pytest.skip("duration_grows_with_text = False for this backend")
        short = self.generate_one(loaded, self.task(loaded, "Hello."))
        long = self.generate_one(loaded, self.task(loaded, self.longer_text))
        assert len(long.samples) > 1.5 * len(short.samples), (
            f"{len(long.samples)} samples for long text, {len(short.samples)} for short")

    def test_speaker_tags_are_understood(self, loaded: Backend):
        if not loaded.capabilities.speaker_tags:
            pytest.skip("backend does not declare speaker_tags (the core strips them)")
        task = make_task("[S1] Hello there. [S2] Hi, how are you?", params=self.params,
                         options=msgspec.convert(self.options, loaded.options))
        self.check_audio(loaded, self.generate_one(loaded, task))

    def test_streamed_pieces_start_the_result(self, loaded: Backend):
        pieces: list[np.ndarray] = []
        task = self.task(loaded, on_audio=lambda samples: pieces.append(np.array(samples)))
        result = self.generate_one(loaded, task)
        if not pieces:
            pytest.skip("the backend does not stream (never calls on_audio)")
        streamed = np.concatenate(pieces)
        assert streamed.ndim == 1 and streamed.dtype == np.float32
        assert np.array_equal(result.samples[:len(streamed)], streamed), (
            "the audio passed to on_audio is not the start of the returned samples; the "
            "core sends the streamed pieces and then only the rest of the result")

    # ------------------------------------------------------------------ cancellation

    def test_a_cancelled_task_yields_cancelled(self, loaded: Backend):
        task = self.task(loaded)
        task.cancel.cancel("cancelled by the contract test", CancelCause.SHUTDOWN)
        results = loaded.generate([task])
        assert len(results) == 1
        assert isinstance(results[0], Cancelled), f"expected Cancelled, got {results[0]!r}"
        assert results[0].cause in (None, CancelCause.SHUTDOWN), (
            f"the task was cancelled for {CancelCause.SHUTDOWN!s} but the backend's "
            f"Cancelled says {results[0].cause!s}; pass cause=task.cancel.cause, or none")

    def test_cancelling_during_generation_yields_cancelled(self, loaded: Backend):
        seen: list[str] = []

        def cancel(kind: str) -> None:
            seen.append(kind)
            task.cancel.cancel("cancelled by the contract test")

        task = self.task(loaded, self.longer_text,
                         on_progress=lambda done, total: cancel("progress"),
                         on_audio=lambda samples: cancel("audio"))
        results = loaded.generate([task])
        if not seen:
            pytest.skip("the backend calls neither on_progress nor on_audio, so it cannot be "
                        "cancelled mid-run from a test; call task.on_progress between steps")
        assert len(results) == 1
        assert isinstance(results[0], Cancelled), (
            f"the task was cancelled during generate (at its first {seen[0]} callback) "
            f"but the backend returned {results[0]!r}")

    def test_a_cancelled_task_leaves_its_batch_mates_alone(self, loaded: Backend):
        caps = loaded.capabilities
        cancelled, kept = self.task(loaded), self.task(loaded)
        if not caps.supports_batching or loaded.batch_key(cancelled) != loaded.batch_key(kept):
            pytest.skip("backend does not batch these tasks")
        cancelled.cancel.cancel("cancelled by the contract test")
        results = loaded.generate([cancelled, kept])
        assert len(results) == 2
        assert isinstance(results[0], Cancelled), repr(results[0])
        assert not isinstance(results[1], BaseException), repr(results[1])
        self.check_audio(loaded, results[1])

    # ------------------------------------------------------------------ decoding loop

    def test_a_continuous_backend_answers_each_task_as_it_ends(self, loaded: Backend):
        """``serve``: a task handed over while another runs is answered, every task
        exactly once, and the loop returns once the feed closes."""
        if not loaded.continuous:
            pytest.skip("the backend batches per call (no decoding loop: continuous is "
                        "False)")
        first = self.task(loaded, self.longer_text)
        second = self.task(loaded)
        feed = _ContractFeed([first], later=[second])
        worker = threading.Thread(target=loaded.serve, args=(feed,), daemon=True)
        worker.start()
        worker.join(600)
        assert not worker.is_alive(), "serve did not return after the feed closed"
        assert sorted(feed.answered) == sorted([first.task_id, second.task_id]), (
            f"each task must be answered exactly once, got {feed.answered}")
        for task in (first, second):
            outcome = feed.outcomes[task.task_id]
            assert not isinstance(outcome, BaseException), repr(outcome)
            self.check_audio(loaded, outcome)
        stats = loaded.loop_stats()
        assert all(isinstance(v, int) for v in stats.values()), stats

    # ------------------------------------------------------------------ declared limits

    def test_core_never_hands_it_more_than_max_text_bytes(self, loaded: Backend,
                                                            tmp_path: Path):
        """Longer text is split by the core into chunks the backend can hold."""
        limit = loaded.capabilities.max_text_bytes
        service = self.service(tmp_path, loaded, _OneVoiceStore(Voice(voice_id="v")))
        words = "Some words to speak, and then some more. " * (limit // 20 + 2)
        prepared = asyncio.run(service.prepare(SpeechRequest(text=words, voice_id="v")))
        tasks = part_tasks(prepared)
        assert len(tasks) >= 2
        for task in tasks:
            assert len(task.text.encode()) <= limit, (len(task.text.encode()), limit)

    def test_cloning_matches_supports_cloning(self, loaded: Backend, tmp_path: Path):
        rate = loaded.capabilities.sample_rate
        t = np.arange(int(self.prompt_seconds * rate)) / rate
        prompt = AudioPrompt("contract-prompt", (0.3 * np.sin(2 * np.pi * 180 * t))
                             .astype(np.float32), rate)
        voice = Voice(voice_id="v", audio_prompt=prompt.prompt_id,
                      audio_prompt_transcript="[S1] This is what the prompt says.")
        service = self.service(tmp_path, loaded, _OneVoiceStore(voice, prompt))
        request = SpeechRequest(text=self.text, voice_id="v", params=self.params,
                                options=dict(self.options))
        if not loaded.capabilities.supports_cloning:
            with pytest.raises(InvalidInput, match="cannot clone"):
                asyncio.run(service.prepare(request))
            return
        prepared = asyncio.run(service.prepare(request))
        assert prepared.task.prompt is prompt
        self.check_audio(loaded, self.generate_one(loaded, prepared.task))
