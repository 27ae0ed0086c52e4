"""The Dia backend: request parameters -> one transformers ``generate`` call per batch.

Cloning follows the reference: the prompt's transcript is prepended to the text, the
prompt audio is the decoder's prefix, and only the audio after the prompt is returned.
Rows are prepared one at a time (so one bad prompt fails only its row) and collated the
way ``DiaProcessor`` pads a batch (text right-padded, decoder prefix left-padded with
BOS), which also lets rows with and without a prompt share a batch. Tokens are chosen
as the reference chooses them (``sampling.py``): guidance at every ``cfg_scale``, greedy
as its temperature 0, and each sampled row from its own random stream seeded from its
request's seed, so on CPU in float32 a batched row is token-identical to its solo run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ttsframe.core.backend import Backend
from ttsframe.core.errors import Cancelled, GenerationFailed, InvalidInput, TTSFrameError
from ttsframe.core.speech_types import Capabilities, SynthesisResult, SynthesisTask
from ttsframe.core.voices import AudioPrompt
from ttsframe.plugins.dia.loading import ModelUnavailable, resolve_model
from ttsframe.plugins.dia.prompt_cache import PromptCache
from ttsframe.plugins.dia.streaming import AudioStreamer

try:  # the plugin must import without torch; load() says what to install
    import torch
except ImportError:  # pragma: no cover - exercised only without the [dia] extra
    torch = None

if TYPE_CHECKING:
    from ttsframe.plugins.dia import DiaConfig

log = logging.getLogger("ttsframe.dia")

INSTALL_HINT = "the Dia backend needs torch and transformers: pip install 'ttsframe[dia]'"
SAMPLE_RATE = 44100
MAX_TEXT_BYTES = 1024  # the encoder's positions; longer text is past what it was trained on
# Longer text is split (core/chunking.py) into chunks of about this size: ~15-20 s of speech
# at Dia's usual 13-17 bytes/s, inside the 5-20 s it speaks naturally; the automatic
# max_tokens for it is 2048 steps, which leaves the decoder room for a 10 s prompt (861
# frames). The core shrinks chunks in proportion to the steps a longer prompt takes.
PREFERRED_TEXT_BYTES = 256
# Streaming: the codec's receptive field is about 9.3 frames either side, so windows are
# decoded with 10 frames of context on both sides (exact to float rounding).
STREAM_CONTEXT_FRAMES = 10
# The reference checkpoint's sampling defaults, used when a checkpoint's config has none.
REFERENCE_DEFAULTS = {"temperature": 1.2, "top_p": 0.95, "top_k": 45, "guidance_scale": 3.0}
# "auto" max_tokens: speech of BYTES_PER_SECOND plus a margin (EOS normally ends earlier),
# rounded up to a bucket so that requests of similar length share batches.
AUTO_BYTES_PER_SECOND = 12.0
AUTO_MARGIN_S = 2.0
AUTO_BUCKET = 128
AUTO_MIN_TOKENS = 256
# The library forces EOS max(delay)+1 steps before max_new_tokens; at or below that it
# yields no frame and decoding crashes. Keep at least this many frames.
MIN_FRAMES = 16
PROGRESS_EVERY = 16  # steps between on_progress calls


@dataclass(frozen=True)
class _Plan:
    """One task's resolved sampling parameters; equal plans can share a batch."""

    greedy: bool  # the reference's temperature 0: guidance and the CFG filter still apply
    temperature: float | None
    top_p: float | None
    top_k: int | None  # also the CFG filter's k (the reference's cfg_filter_top_k)
    guidance_scale: float
    max_new_tokens: int
    compile: bool


@dataclass
class _Row:
    """A task's prepared input and what it produced."""

    index: int
    task: SynthesisTask
    inputs: dict[str, Any]
    prompt_frames: int
    notes: list[str] = field(default_factory=list)
    seed: int | None = None  # sampling only: the request's, else drawn in _run


@dataclass
class DiaCodes:
    """Generated audio codes of one task, before the codec: ``codes`` is (frames, 9)."""

    codes: np.ndarray
    steps: int
    notes: list[str]
    info: dict[str, Any]
    # The audio already decoded while streaming (what on_audio received), if it streamed.
    audio: np.ndarray | None = None


class DiaBackend(Backend):
    """Dia-1.6B via ``DiaForConditionalGeneration`` and ``DiaProcessor``."""

    name = "dia"

    def __init__(self, config: DiaConfig) -> None:
        self.config = config
        self.model = None
        self.processor = None
        self.device = None
        self.dtype = None
        self.resolved = None
        self.compile_problem: str | None = None  # why compile is off for this process
        self._defaults = dict(REFERENCE_DEFAULTS)
        self._max_steps = 3072
        self._delay = [0, 8, 9, 10, 11, 12, 13, 14, 15]
        self._hop = 512
        # Encoded audio prompts, reused across requests and the chunks of a long text.
        self._prompts = PromptCache(config.prompt_cache_size)

    # -- facts -------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            sample_rate=SAMPLE_RATE, max_text_bytes=MAX_TEXT_BYTES,
            preferred_text_bytes=PREFERRED_TEXT_BYTES,
            max_decoder_steps=self._max_steps, frames_per_second=SAMPLE_RATE / self._hop,
            supports_cloning=True, supports_batching=True,
            max_batch_size=self.config.max_batch_size, supports_streaming=True,
            speaker_tags=True, languages=("en",))

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"model": self.config.model, "loaded": self.model is not None}
        if self.resolved is not None:
            facts.update(model_dir=str(self.resolved.model_dir),
                         codec=self.resolved.codec_ref, codec_dir=str(self.resolved.codec_dir))
        if self.model is not None:
            facts.update(device=str(self.device), dtype=str(self.dtype).removeprefix("torch."),
                         compile=self._compile_state(),
                         max_decoder_steps=self._max_steps,
                         prompt_cache={"entries": len(self._prompts),
                                       "max": self._prompts.size,
                                       "hits": self._prompts.hits,
                                       "misses": self._prompts.misses})
        return facts

    def _compile_state(self) -> str:
        if self.config.compile == "off":
            return "off"
        if self.device is None or self.device.type != "cuda":
            return "unavailable (CUDA only)"
        if self.compile_problem:
            return f"failed, running eagerly: {self.compile_problem}"
        return "on" if self.config.compile == "on" else "auto (when a request asks for it)"

    # -- loading -----------------------------------------------------------------------

    def load(self) -> None:
        if torch is None:
            raise RuntimeError(INSTALL_HINT)
        try:
            import transformers  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(INSTALL_HINT) from exc
        started = time.perf_counter()
        cfg = self.config
        self.resolved = resolve_model(
            cfg.model, revision=cfg.revision, codec=cfg.codec,
            local_files_only=cfg.local_files_only, cache_dir=cfg.cache_dir,
            timeout_s=cfg.hub_timeout_s)
        if cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)
        self.device = _pick_device(cfg.device)
        self.dtype = _pick_dtype(cfg.dtype, self.device)
        try:
            self.model, self.processor = _load_components(
                self.resolved.model_dir, self.resolved.codec_dir, self.device, self.dtype)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(
                f"loading Dia from '{self.resolved.model_dir}' (codec "
                f"'{self.resolved.codec_dir}') failed: {exc}. Point [plugins.dia] model at a "
                "transformers-format Dia checkpoint") from exc
        model_config = self.model.config
        self._delay = list(model_config.delay_pattern)
        self._max_steps = int(model_config.decoder_config.max_position_embeddings)
        self._hop = int(self.processor.feature_extractor.hop_length)
        gen = self.model.generation_config
        for key in self._defaults:
            value = getattr(gen, key, None)
            if value is not None:
                self._defaults[key] = value
        log.info("Dia loaded from %s on %s (%s) in %.1f s; compile: %s",
                 self.resolved.model_dir, self.device, self.describe()["dtype"],
                 time.perf_counter() - started, self._compile_state())

    def close(self) -> None:
        cuda = self.device is not None and self.device.type == "cuda"
        self.model = self.processor = None
        if cuda:
            torch.cuda.empty_cache()

    # -- request parameters ------------------------------------------------------------

    def _plan(self, task: SynthesisTask) -> tuple[_Plan, list[str]]:
        """Resolve a task's parameters against the checkpoint's defaults, with notes on
        anything changed."""
        p = task.params
        notes: list[str] = []
        d = self._defaults
        temperature = d["temperature"] if p.temperature is None else float(p.temperature)
        if not p.greedy and temperature <= 0:
            raise InvalidInput("temperature must be above 0; use greedy for deterministic "
                               "decoding")
        max_new, max_notes = self._max_new_tokens(task)
        notes += max_notes
        greedy = bool(p.greedy)
        plan = _Plan(
            greedy=greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else (d["top_p"] if p.top_p is None else float(p.top_p)),
            top_k=d["top_k"] if p.top_k is None else int(p.top_k),
            guidance_scale=d["guidance_scale"] if p.cfg_scale is None else float(p.cfg_scale),
            max_new_tokens=max_new,
            compile=self._wants_compile(task, notes))
        return plan, notes

    def _max_new_tokens(self, task: SynthesisTask) -> tuple[int, list[str]]:
        """Requested or automatic decoder steps, before the per-batch prompt clamp.

        Auto: ``ceil((bytes / 12 + 2 s) * 86.13 frames/s) + 16``, rounded up to a multiple
        of 128, within [256, 3072]; the model normally ends speech (EOS) well before it.
        ``bytes`` is the text's size, or ``text_bytes_hint`` (a long text's largest chunk)
        when that is larger.
        """
        floor = max(self._delay) + 1 + MIN_FRAMES
        ceiling = self._max_steps - 1  # one decoder position holds the start token
        requested = task.params.max_tokens
        if requested is None:
            # Chunks of one long text estimate from their largest chunk: same bucket, so
            # they can share a batch.
            size = max(len(task.text.encode()), getattr(task, "text_bytes_hint", None) or 0)
            seconds = size / AUTO_BYTES_PER_SECOND + AUTO_MARGIN_S
            steps = math.ceil(seconds * SAMPLE_RATE / self._hop) + max(self._delay) + 1
            steps = math.ceil(steps / AUTO_BUCKET) * AUTO_BUCKET
            return min(max(steps, AUTO_MIN_TOKENS), ceiling), []
        if requested < floor:
            return floor, [f"max_tokens {requested} was raised to {floor}: Dia ends every "
                           f"generation {max(self._delay) + 1} steps after its last frame"]
        if requested > ceiling:
            return ceiling, [f"max_tokens {requested} was lowered to {ceiling}: the model "
                             f"holds {self._max_steps} decoder steps, including the start "
                             "token and any audio prompt"]
        return requested, []

    def _wants_compile(self, task: SynthesisTask, notes: list[str]) -> bool:
        asked = task.params.use_torch_compile
        if self.config.compile == "off":
            if asked:
                notes.append("use_torch_compile was ignored: [plugins.dia] compile is off")
            return False
        want = asked if asked is not None else self.config.compile == "on"
        if want and (self.device is None or self.device.type != "cuda"):
            if asked:
                notes.append("use_torch_compile was ignored: torch.compile is only used on "
                              f"CUDA and this model runs on {self.device}")
            return False
        if want and self.compile_problem:
            if asked:
                notes.append(f"use_torch_compile was ignored: compiling failed earlier "
                             f"({self.compile_problem})")
            return False
        return want

    def batch_key(self, task: SynthesisTask) -> Hashable:
        """Same sampling parameters, max_tokens bucket and compile flag. Seeds may differ:
        every row samples from its own random stream."""
        try:
            plan, _ = self._plan(task)
        except TTSFrameError:
            return ("invalid", task.task_id)
        return plan

    # -- generation --------------------------------------------------------------------

    def generate(self, tasks: list[SynthesisTask]) -> list[SynthesisResult | BaseException]:
        outputs = self.generate_codes(tasks)
        results: list[SynthesisResult | BaseException] = []
        for out in outputs:
            if isinstance(out, BaseException):
                results.append(out)
                continue
            try:
                results.append(self._decode(out))
            except Exception as exc:
                log.exception("Dia codec decoding failed")
                results.append(GenerationFailed(f"decoding the generated audio failed: {exc}"))
        return results

    def generate_codes(self, tasks: list[SynthesisTask]) -> list[DiaCodes | BaseException]:
        """Generate audio codes without decoding them: what ``generate`` decodes, exposed
        so that callers (and tests) can compare codes rather than audio."""
        if self.model is None:
            raise RuntimeError("the Dia backend is not loaded")
        out: list[DiaCodes | BaseException | None] = [None] * len(tasks)
        groups: dict[Hashable, list[tuple[int, _Plan, list[str]]]] = {}
        for i, task in enumerate(tasks):
            try:
                plan, notes = self._plan(task)
            except TTSFrameError as exc:
                out[i] = exc
                continue
            groups.setdefault(plan, []).append((i, plan, notes))
        # The scheduler batches by batch_key already; this keeps any other caller correct.
        with torch.inference_mode():
            for members in groups.values():
                plan = members[0][1]
                try:
                    for i, result in self._run(tasks, members, plan):
                        out[i] = result
                    for i, _, notes in members:
                        out[i] = self._extend(tasks, i, notes, plan, out[i])
                except Exception as exc:
                    log.exception("Dia generation failed")
                    for i, _, _ in members:
                        if out[i] is None:  # rows already answered keep their answer
                            out[i] = GenerationFailed(f"Dia generation failed: {exc}")
        return out  # type: ignore[return-value]

    def _extend(self, tasks, i: int, notes: list[str], plan: _Plan, result):
        """Never cut speech because the automatic budget was short: a row that used all
        of it (without EOS) is generated again with twice the steps, up to what the
        decoder holds. Its seed gives the same take, only longer. Streamed rows have
        sent their audio already, so they keep the cut and its note."""
        task = tasks[i]
        if task.params.max_tokens is not None or task.on_audio is not None:
            return result
        first = plan.max_new_tokens
        while isinstance(result, DiaCodes) and result.info.get("budget_limited"):
            budget = result.info["max_new_tokens"]
            limit = self._max_steps - 1 - result.info["prompt_frames"]
            if budget >= limit:
                break
            bigger = dataclasses.replace(plan, max_new_tokens=min(budget * 2, limit))
            ((_, longer),) = list(self._run(tasks, [(i, bigger, notes)], bigger))
            if not isinstance(longer, DiaCodes):
                return longer if isinstance(longer, Cancelled) else result
            longer.notes.insert(0, (
                f"the automatic max_tokens ({first} steps) ran out before the speech ended, "
                f"so it was generated again with {longer.info['max_new_tokens']} steps"))
            result = longer
        return result

    def _run(self, tasks, members, plan: _Plan):
        rows: list[_Row] = []
        for i, _, notes in members:
            task = tasks[i]
            if task.cancel.cancelled:
                yield i, Cancelled(f"cancelled before generation: {task.cancel.reason}")
                continue
            try:
                row = self._prepare(i, task, notes)
                if not plan.greedy:  # a row's tokens follow from its seed: always know it
                    row.seed = (task.params.seed if task.params.seed is not None
                                else secrets.randbelow(2**32))
                rows.append(row)
            except TTSFrameError as exc:
                yield i, exc
            except Exception as exc:  # fails this row only
                log.exception("preparing a Dia input failed")
                yield i, GenerationFailed(f"preparing the input for Dia failed: {exc}")
        if not rows:
            return
        decoder = self.model.config.decoder_config
        batch = _collate(rows, self.processor.tokenizer.pad_token_id or 0,
                         decoder.bos_token_id, self.device)
        prompt_len = self.processor.get_audio_prompt_len(batch["decoder_attention_mask"])
        max_new = plan.max_new_tokens
        room = self._max_steps - prompt_len
        if max_new > room:
            for row in rows:
                row.notes.append(
                    f"max_tokens {max_new} was lowered to {room}: the audio prompt"
                    f"{'s of this batch take' if len(rows) > 1 else ' takes'} "
                    f"{prompt_len - 1} of the model's {self._max_steps} decoder steps")
            max_new = room
        streamer = AudioStreamer(
            rows, codec=self.processor.audio_tokenizer, prompt_len=prompt_len,
            delay=self._delay, hop=self._hop, eos=decoder.eos_token_id,
            pad=decoder.pad_token_id, window=self.config.stream_frames,
            context=STREAM_CONTEXT_FRAMES)
        watch = _Watch([r.task for r in rows], prompt_len, max_new, streamer or None)
        started = time.perf_counter()
        sequences, compiled = self._generate(batch, plan, max_new, watch, rows)
        elapsed = time.perf_counter() - started
        steps = int(sequences.shape[1]) - prompt_len
        codes = _revert_delay(sequences, self.processor, self._delay)
        pad = decoder.pad_token_id
        for k, row in enumerate(rows):
            if row.task.cancel.cancelled:
                yield row.index, Cancelled(
                    f"cancelled after {steps} of {max_new} decoding steps: "
                    f"{row.task.cancel.reason}")
                continue
            # As DiaProcessor.batch_decode: after the prompt, up to (excluding) the EOS.
            end = int(sequences.shape[1] - (sequences[k, :, 0] == pad).sum()) - 1
            row_codes = codes[k, :, prompt_len:end].T.cpu().numpy()
            notes = list(row.notes)
            if row_codes.shape[0] == 0:
                notes.append("the model ended speech immediately: the audio is empty")
            # The library forces EOS max(delay)+1 steps before the budget's end: a row
            # with that many frames stopped on its budget, not on its own EOS.
            exhausted = row_codes.shape[0] >= max_new - (max(self._delay) + 1)
            if exhausted:
                notes.append(self._cut_note(row, max_new))
            info = {
                "frames": int(row_codes.shape[0]), "steps": steps,
                "max_new_tokens": max_new, "prompt_frames": row.prompt_frames,
                "batch_size": len(rows), "generate_s": round(elapsed, 3),
                "greedy": plan.greedy, "compiled": compiled, "budget_limited": exhausted,
                "cfg_scale": plan.guidance_scale, "top_k": plan.top_k,
            }
            if not plan.greedy:
                info.update(temperature=plan.temperature, top_p=plan.top_p, seed=row.seed)
            streamed = streamer.finish(k, row_codes)  # what is left of a streaming row
            yield row.index, DiaCodes(row_codes, steps, notes, info, streamed)

    def _cut_note(self, row: _Row, max_new: int) -> str:
        limit = self._max_steps - 1 - row.prompt_frames
        text = (f"speech was cut: it used all {max_new} decoding steps of its budget before "
                "the model ended it, so the audio may stop mid-word")
        if max_new >= limit:
            return (f"{text}; that is all the model's decoder holds"
                    f"{' with this audio prompt' if row.prompt_frames else ''}: "
                    "split the text into shorter requests")
        if row.task.params.max_tokens is not None:
            return f"{text}; send a larger max_tokens (up to {limit}) or leave it out"
        return text

    def check(self, task: SynthesisTask) -> None:
        """The limits of one generation, checked before queueing and again per row:
        text, text with the prompt's transcript, and the prompt's share of the decoder."""
        if not task.text.strip():
            raise InvalidInput("the text is empty: there is nothing to speak")
        if task.prompt is not None:
            prompt = task.prompt
            seconds = max(np.shape(prompt.samples), default=0) / prompt.sample_rate
            frames = math.ceil(seconds * SAMPLE_RATE / self._hop)
            if frames + 1 + max(self._delay) + 1 + MIN_FRAMES > self._max_steps:
                raise InvalidInput(
                    f"audio prompt '{prompt.prompt_id}' is {seconds:.1f} s long; with it the "
                    f"model has no room left for speech (it holds about "
                    f"{self._max_steps * self._hop / SAMPLE_RATE:.0f} s in all): use a 5-10 s "
                    "prompt")
        text = _model_text(task)
        size = len(text.encode())
        if size > MAX_TEXT_BYTES:
            what = "text with the voice's prompt transcript" if text is not task.text else "text"
            raise InvalidInput(f"the {what} is {size} bytes; Dia reads at most "
                               f"{MAX_TEXT_BYTES} bytes per generation: split the text")

    def _prepare(self, index: int, task: SynthesisTask, notes: list[str]) -> _Row:
        """Text and prompt of one row through the processor, exactly as the reference."""
        notes = list(notes)  # the task's own notes are reported by the core
        self.check(task)
        text = _model_text(task)
        language = getattr(task, "language", None)
        if language and not language.lower().startswith("en"):
            notes.append(f"language '{language}' was ignored: Dia speaks English only")
        samples = None
        prompt_frames = 0
        if task.prompt is not None:
            samples = _prompt_samples(task.prompt, notes)
            prompt_frames = math.ceil(samples.size / self._hop)
            if not task.prompt_transcript:
                notes.append("the audio prompt has no transcript: Dia clones a voice best when "
                             "the prompt's transcript is given")
        try:
            inputs = dict(self.processor(text=[text], padding=True, return_tensors="pt"))
            if samples is not None:  # the prompt's decoder prefix depends on its audio only
                inputs.update(self._prompts.get(task.prompt.prompt_id, samples,
                                                self._encode_prompt))
        except Exception as exc:
            what = f"audio prompt '{task.prompt.prompt_id}'" if samples is not None else "text"
            raise InvalidInput(f"the {what} could not be encoded for Dia: {exc}") from exc
        return _Row(index, task, dict(inputs), prompt_frames, notes)

    def _encode_prompt(self, samples: np.ndarray) -> dict[str, Any]:
        """The decoder prefix (codec codes, delayed) the processor makes for ``samples``."""
        inputs = self.processor(text=["."], audio=[samples], sampling_rate=SAMPLE_RATE,
                                padding=True, return_tensors="pt")
        return {key: inputs[key] for key in ("decoder_input_ids", "decoder_attention_mask")}

    def _generate(self, batch, plan: _Plan, max_new: int, watch, rows):
        # DiaSampler chooses every token; transformers' greedy step takes it.
        kwargs: dict[str, Any] = dict(batch, max_new_tokens=max_new,
                                      stopping_criteria=[watch], do_sample=False,
                                      temperature=None, top_p=None, top_k=None,
                                      guidance_scale=None)
        seeds = [row.seed for row in rows]
        if not plan.compile:
            return self._call(kwargs, plan, seeds, compile=False), False
        try:
            return self._call(kwargs, plan, seeds, compile=True), True
        except Exception as exc:  # compile problems surface inside the first generate
            problem = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("compiled generation failed (%s); retrying without torch.compile", problem)
        # raises if not compile's fault
        sequences = self._call(kwargs, plan, seeds, compile=False)
        self.compile_problem = problem
        for row in rows:
            row.notes.append("torch.compile failed, so this ran without it")
        return sequences, False

    def _call(self, kwargs, plan: _Plan, seeds: list[int | None], *, compile: bool):
        # A static cache is what makes transformers compile the forward pass on CUDA.
        extra = {"cache_implementation": "static"} if compile else {}
        # Fresh generators on every call: a retry replays the same random streams.
        self.model.sampler = {
            "seeds": seeds, "cfg_scale": plan.guidance_scale, "top_k": plan.top_k,
            "temperature": None if plan.greedy else plan.temperature, "top_p": plan.top_p}
        try:
            return self.model.generate(**kwargs, **extra)
        finally:
            self.model.sampler = None

    def _decode(self, out: DiaCodes) -> SynthesisResult:
        """The codec step of DiaProcessor.batch_decode for one row."""
        if out.audio is not None:  # decoded window by window while streaming
            samples = out.audio
        elif out.codes.shape[0] == 0:
            samples = np.zeros(0, np.float32)
        else:
            codec = self.processor.audio_tokenizer
            codes = torch.from_numpy(out.codes.T.copy())[None].to(codec.device)
            with torch.inference_mode():
                audio = codec.decode(audio_codes=codes).audio_values
            samples = audio.float().cpu().numpy().reshape(-1)
            samples = np.clip(samples, -1.0, 1.0, out=samples).astype(np.float32, copy=False)
        return SynthesisResult(samples=samples, sample_rate=SAMPLE_RATE,
                               tokens=int(out.codes.shape[0]), notes=out.notes, info=out.info)


# -- helpers ---------------------------------------------------------------------------


def _pick_device(wanted: str):
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable(
            "[plugins.dia] device is 'cuda' but torch sees no CUDA device (torch "
            f"{torch.__version__}): install a CUDA build of torch or set device = \"cpu\"")
    if wanted == "mps" and not torch.backends.mps.is_available():
        raise ModelUnavailable("[plugins.dia] device is 'mps' but MPS is not available: "
                               "set device = \"cpu\"")
    return torch.device(wanted)


def _pick_dtype(wanted: str, device):
    if wanted != "auto":
        return getattr(torch, wanted)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32  # float16 is unstable for Dia; CPU and MPS stay in float32


def _load_components(model_dir, codec_dir, device, dtype):
    """Model and processor from local directories. The processor is built from its parts
    so that its codec comes from ``codec_dir``, wherever the checkpoint says it lives."""
    import transformers
    from transformers import DacModel, DiaFeatureExtractor, DiaProcessor, DiaTokenizer

    dtype_kw = "dtype" if _version(transformers.__version__) >= (4, 56) else "torch_dtype"
    model = _model_class().from_pretrained(model_dir, local_files_only=True,
                                           **{dtype_kw: dtype})
    model.to(device).eval()
    codec = DacModel.from_pretrained(codec_dir, local_files_only=True).to(device).eval()
    processor = DiaProcessor(DiaFeatureExtractor.from_pretrained(model_dir),
                             DiaTokenizer.from_pretrained(model_dir), codec)
    return model, processor


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _model_class():
    """``DiaForConditionalGeneration`` whose token choice is ``DiaSampler``'s.

    While ``sampler`` holds the sampler's arguments, every generate call runs the CFG
    batch (also at ``cfg_scale`` 1.0, which transformers treats as "no guidance") and
    ``DiaSampler`` replaces transformers' logits processors; transformers' greedy step
    then takes the token it chose.
    """
    from transformers import DiaForConditionalGeneration
    from transformers.generation.logits_process import (
        DiaEOSDelayPatternLogitsProcessor,
        LogitsProcessorList,
    )

    from ttsframe.plugins.dia.sampling import DiaSampler

    class DiaWithReferenceSampling(DiaForConditionalGeneration):
        sampler: dict[str, Any] | None = None

        def _prepare_generation_config(self, *args, **kwargs):
            prepared = super()._prepare_generation_config(*args, **kwargs)
            if self.sampler is not None:
                self._uses_cfg = True  # guidance at every scale, as the reference
            return prepared

        def _get_logits_processor(self, generation_config, *args, **kwargs):
            if self.sampler is None:
                return super()._get_logits_processor(generation_config, *args, **kwargs)
            device = kwargs.get("device") or self.device
            decoder = self.config.decoder_config
            delay = DiaEOSDelayPatternLogitsProcessor(
                delay_pattern=self.config.delay_pattern, eos_token_id=decoder.eos_token_id,
                max_generation_len=generation_config.max_length, device=device)
            return LogitsProcessorList([DiaSampler(
                **self.sampler, channels=len(self.config.delay_pattern),
                eos=decoder.eos_token_id, delay=delay, device=device)])

    return DiaWithReferenceSampling


def _model_text(task: SynthesisTask) -> str:
    """What the encoder reads: the prompt's transcript, a space, then the text."""
    if task.prompt is not None and task.prompt_transcript:
        return task.prompt_transcript + " " + task.text
    return task.text


def _prompt_samples(prompt: AudioPrompt, notes: list[str]) -> np.ndarray:
    """The prompt as the processor needs it: 1-D float32 at 44.1 kHz (it does not resample)."""
    samples = np.asarray(prompt.samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=int(np.argmin(samples.shape)))
        notes.append(f"audio prompt '{prompt.prompt_id}' was mixed down to mono")
    if samples.ndim != 1 or samples.size == 0 or not np.isfinite(samples).all():
        raise InvalidInput(f"audio prompt '{prompt.prompt_id}' is not usable audio (need "
                           "non-empty mono samples)")
    if prompt.sample_rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, prompt.sample_rate, SAMPLE_RATE, quality="HQ")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        notes.append(f"audio prompt '{prompt.prompt_id}' was resampled from "
                     f"{prompt.sample_rate} Hz to {SAMPLE_RATE} Hz")
    return samples


def _collate(rows: list[_Row], text_pad: int, bos: int, device) -> dict[str, Any]:
    """Pad single-row processor outputs into one batch, as DiaProcessor pads a batch."""
    text_len = max(r.inputs["input_ids"].shape[1] for r in rows)
    dec_len = max(r.inputs["decoder_input_ids"].shape[1] for r in rows)
    pad = torch.nn.functional.pad

    def right(t, value):
        return pad(t, (0, text_len - t.shape[1]), value=value)

    def left(t, value):
        extra = dec_len - t.shape[1]
        return pad(t, (0, 0, extra, 0) if t.ndim == 3 else (extra, 0), value=value)

    batch = {
        "input_ids": torch.cat([right(r.inputs["input_ids"], text_pad) for r in rows]),
        "attention_mask": torch.cat([right(r.inputs["attention_mask"], 0) for r in rows]),
        "decoder_input_ids": torch.cat([left(r.inputs["decoder_input_ids"], bos)
                                        for r in rows]),
        "decoder_attention_mask": torch.cat([left(r.inputs["decoder_attention_mask"], 0)
                                             for r in rows]),
    }
    return {key: value.to(device) for key, value in batch.items()}


def _revert_delay(sequences, processor, delay):
    """(batch, steps, channels) delayed decoder output -> (batch, channels, frames)."""
    bsz, seq_len, channels = sequences.shape
    index = processor.build_indices(bsz=bsz, seq_len=seq_len, num_channels=channels,
                                    delay_pattern=delay, revert=True)
    return processor.apply_audio_delay(audio=sequences, pad_token_id=-1, bos_token_id=-1,
                                       precomputed_idx=index).transpose(1, 2)


class _Watch:
    """Stopping criterion: reports progress, streams the audio that is final (if a row
    streams) and stops once every row is cancelled.

    transformers calls it after each decoding step with the (batch * channels, length)
    token ids; returning all-True ends generation there.
    """

    def __init__(self, tasks: list[SynthesisTask], prompt_len: int, max_new: int,
                 streamer: AudioStreamer | None = None) -> None:
        self.tasks, self.prompt_len, self.max_new = tasks, prompt_len, max_new
        self.streamer = streamer

    def __call__(self, input_ids, scores, **kwargs):
        step = int(input_ids.shape[1]) - self.prompt_len
        if step % PROGRESS_EVERY == 0 or step >= self.max_new:
            for task in self.tasks:
                if task.on_progress is not None:
                    try:
                        task.on_progress(step, self.max_new)
                    except Exception:
                        log.exception("on_progress callback failed")
        if self.streamer is not None:
            self.streamer.step(input_ids)
        stop = all(task.cancel.cancelled for task in self.tasks)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool,
                          device=input_ids.device)
