"""The Dia backend: request parameters -> one transformers ``generate`` call per batch.

Cloning follows the reference: the prompt's transcript is prepended to the text, the
prompt audio is the decoder's prefix, and only the audio after the prompt is returned.
Tokens are chosen as the reference chooses them (``sampling.py``): guidance at every
``cfg_scale``, greedy as its temperature 0, and each sampled row from its own random
stream seeded from its request's seed, so on CPU in float32 a batched row is
token-identical to its solo run.

This module runs batches; the rest of the package holds the parts: ``planning.py`` (a
task's parameters, budget and limits), ``loading.py`` (finding and loading the
checkpoint), ``collation.py`` (rows in and out of a batch), ``sampling.py`` (the token
choice), ``stopping.py`` (progress and cancellation after each step), ``streaming.py``
(audio while generating) and ``prompt_cache.py`` (encoded voice prompts).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ttsframe import (
    Backend,
    Cancelled,
    Capabilities,
    GenerationFailed,
    InvalidInput,
    SynthesisResult,
    SynthesisTask,
    TaskFeed,
    TTSFrameError,
)
from ttsframe.plugins.dia.loading import (
    ModelUnavailable,
    load_components,
    pick_device,
    pick_dtype,
    resolve_model,
)
from ttsframe.plugins.dia.loops import loop_seconds
from ttsframe.plugins.dia.planning import (
    MAX_TEXT_BYTES,
    REFERENCE_DEFAULTS,
    SAMPLE_RATE,
    DecoderShape,
    DiaOptions,
    GenerationPlan,
    check_limits,
    cut_note,
    model_text,
    options_of,
    plan_generation,
)
from ttsframe.plugins.dia.prompt_cache import ONE_OFF_SIZE, PromptCache

try:  # the plugin must import without torch; load() says what to install
    import torch

    from ttsframe.plugins.dia.collation import (
        PreparedRow,
        collate,
        prompt_samples,
        revert_delay,
    )
    from ttsframe.plugins.dia.loop import DecodingLoop, LoopRow, pick_joiners
    from ttsframe.plugins.dia.loop import row_codes as loop_codes
    from ttsframe.plugins.dia.stopping import AfterEachStep
    from ttsframe.plugins.dia.streaming import AudioStreamer
except ImportError:  # pragma: no cover - exercised only without the [dia] extra
    torch = None

if TYPE_CHECKING:
    from ttsframe.plugins.dia.config import DiaConfig

log = logging.getLogger("ttsframe.dia")

INSTALL_HINT = "the Dia backend needs torch and transformers: pip install 'ttsframe[dia]'"
# Longer text is split (core/speech/chunking.py) into chunks of about this size: ~15-20 s of speech
# at Dia's usual 13-17 bytes/s, inside the 5-20 s it speaks naturally; the automatic
# max_tokens for it is 2048 steps, which leaves the decoder room for a 10 s prompt (861
# frames). The core shrinks chunks in proportion to the steps a longer prompt takes.
PREFERRED_TEXT_BYTES = 256
# Seconds per character Dia speaks at, fastest and slowest, for the quality stage's rate
# check: it speaks about 13-17 bytes a second; racing speech or an early end is well
# above 30 characters a second.
SPEECH_RATE = (0.03, 0.25)
# Streaming: the codec's receptive field is about 9.3 frames either side, so windows are
# decoded with 10 frames of context on both sides (exact to float rounding).
STREAM_CONTEXT_FRAMES = 10


class _ListFeed:
    """A ``TaskFeed`` over a fixed list of tasks (``generate``): every task is there
    from the start, and the feed closes once all are handed over."""

    def __init__(self, tasks: list[SynthesisTask]) -> None:
        self.tasks = list(tasks)
        self.outcomes: dict[int, Any] = {}

    @property
    def closed(self) -> bool:
        return not self.tasks

    def take(self, limit: int, *, block: bool) -> list[SynthesisTask]:
        taken, self.tasks[:limit] = self.tasks[:limit], []
        return taken

    def done(self, task: SynthesisTask, outcome: Any) -> None:
        self.outcomes[id(task)] = outcome


@dataclass
class DiaCodes:
    """Generated audio codes of one task, before the codec: ``codes`` is (frames, 9)."""

    codes: np.ndarray
    steps: int
    notes: list[str]
    info: dict[str, Any]
    # The audio already decoded while streaming (what on_audio received), if it streamed.
    audio: np.ndarray | None = None


def _resumed(tasks: list[SynthesisTask], i: int, sent: DiaCodes) -> list[SynthesisTask]:
    """``tasks`` with row ``i`` listening past the audio ``sent`` already streamed, for
    its regeneration with a larger budget (a row that does not stream is unchanged)."""
    task = tasks[i]
    if task.on_audio is None or sent.audio is None:
        return tasks
    listener, skip = task.on_audio, [int(sent.audio.size)]

    def on_audio(samples: np.ndarray) -> None:
        drop = min(skip[0], samples.size)
        skip[0] -= drop
        if samples.size > drop:
            listener(samples[drop:])

    return [*tasks[:i], msgspec.structs.replace(task, on_audio=on_audio), *tasks[i + 1:]]


def _listening_past(listener, skip: int):
    """``listener`` (a task's ``on_audio``) hearing nothing of the first ``skip``
    samples it is handed: a streamed row generated again with a larger budget."""
    left = [skip]

    def on_audio(samples: np.ndarray) -> None:
        drop = min(left[0], samples.size)
        left[0] -= drop
        if samples.size > drop:
            listener(samples[drop:])

    return on_audio


class DiaBackend(Backend):
    """Dia-1.6B via ``DiaForConditionalGeneration`` and ``DiaProcessor``."""

    name = "dia"
    options = DiaOptions

    def __init__(self, config: DiaConfig) -> None:
        self.config = config
        self.model = None
        self.processor = None
        self.device = None
        self.dtype = None
        self.resolved = None
        self.compile_problem: str | None = None  # why compile is off for this process
        self._defaults = dict(REFERENCE_DEFAULTS)
        # The decoding loop's rows now, rows waiting to join it, and joins since start
        # (``serve``): /health and /queue/stats show them.
        self._loop_state = {"rows": 0, "waiting": 0, "joins": 0, "joins_while_running": 0}
        self.shape = DecoderShape()  # the real checkpoint's, until one is loaded
        # Seconds per character it speaks at; None for a checkpoint of random weights.
        self.speech_rate: tuple[float, float] | None = SPEECH_RATE
        # Encoded audio prompts, reused across requests and the chunks of a long text. The
        # one-off area holds at least a batch's worth, so rows of one batch never evict
        # each other's first chunk.
        self._prompts = PromptCache(config.prompt_cache_size,
                                    max(ONE_OFF_SIZE, config.max_batch_size))

    # -- facts -------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            sample_rate=SAMPLE_RATE, max_text_bytes=MAX_TEXT_BYTES,
            preferred_text_bytes=PREFERRED_TEXT_BYTES,
            max_decoder_steps=self.shape.max_steps,
            frames_per_second=SAMPLE_RATE / self.shape.hop,
            supports_cloning=True, supports_batching=True,
            max_batch_size=self.config.max_batch_size, supports_streaming=True,
            speaker_tags=True, speakers=("S1", "S2"), languages=("en",),
            speech_rate=self.speech_rate)

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"model": self.config.model, "loaded": self.model is not None}
        if self.resolved is not None:
            facts.update(model_dir=str(self.resolved.model_dir),
                         codec=self.resolved.codec_ref, codec_dir=str(self.resolved.codec_dir))
        if self.model is not None:
            facts.update(device=str(self.device), dtype=str(self.dtype).removeprefix("torch."),
                         compile=self._compile_state(),
                         max_decoder_steps=self.shape.max_steps,
                         prompt_cache={"entries": len(self._prompts),
                                       "max": self._prompts.size,
                                       "hits": self._prompts.hits,
                                       "misses": self._prompts.misses,
                                       "one_off": self._prompts.one_off()},
                         loop=self.loop_stats())
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
        self.device = pick_device(cfg.device)
        self.dtype = pick_dtype(cfg.dtype, self.device)
        try:
            self.model, self.processor = load_components(
                self.resolved.model_dir, self.resolved.codec_dir, self.device, self.dtype)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(
                f"loading Dia from '{self.resolved.model_dir}' (codec "
                f"'{self.resolved.codec_dir}') failed: {exc}. Point [plugins.dia] model at a "
                "transformers-format Dia checkpoint") from exc
        model_config = self.model.config
        self.shape = DecoderShape(
            max_steps=int(model_config.decoder_config.max_position_embeddings),
            delay=tuple(model_config.delay_pattern),
            hop=int(self.processor.feature_extractor.hop_length))
        if getattr(model_config, "random_weights", False):  # tiny.py's test checkpoints
            self.speech_rate = None
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

    def _plan(self, task: SynthesisTask) -> tuple[GenerationPlan, list[str]]:
        """The task's plan (``planning.py``) on this checkpoint, with notes on anything
        changed."""
        notes: list[str] = []
        compile = self._wants_compile(task, notes)
        plan, plan_notes = plan_generation(task, self._defaults, self.shape, compile=compile)
        return plan, plan_notes + notes

    def _wants_compile(self, task: SynthesisTask, notes: list[str]) -> bool:
        asked = options_of(task).use_torch_compile
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
        """Tasks share a call unless one is compiled: the decoding loop runs every row
        with its own parameters, seed and budget; a compiled generate call needs equal
        plans."""
        try:
            plan, _ = self._plan(task)
        except TTSFrameError:
            return ("invalid", task.task_id)
        return plan if plan.compile else "loop"

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
        groups: dict[GenerationPlan, list[tuple[int, list[str]]]] = {}
        looped: list[int] = []
        for i, task in enumerate(tasks):
            try:
                plan, notes = self._plan(task)
            except TTSFrameError as exc:
                out[i] = exc
                continue
            if plan.compile:  # transformers' generate, one call per plan
                groups.setdefault(plan, []).append((i, notes))
            else:
                looped.append(i)
        if looped:  # every other task shares one decoding loop, whatever its parameters
            feed = _ListFeed([tasks[i] for i in looped])
            self._serve(feed, finish=lambda codes: codes)
            for i in looped:
                out[i] = feed.outcomes.get(id(tasks[i]), GenerationFailed(
                    "Dia generation failed: the decoding loop gave no answer"))
        with torch.inference_mode():
            for plan, members in groups.items():
                try:
                    for i, result in self._run(tasks, members, plan):
                        out[i] = result
                    for i, notes in members:
                        out[i] = self._extend(tasks, i, notes, plan, out[i])
                except Exception as exc:
                    log.exception("Dia generation failed")
                    for i, _ in members:
                        if out[i] is None:  # rows already answered keep their answer
                            out[i] = GenerationFailed(f"Dia generation failed: {exc}")
        return out  # type: ignore[return-value]

    def _extend(self, tasks, i: int, notes: list[str], plan: GenerationPlan, result):
        """Never cut speech because the automatic budget was short: a row that used all
        of it (without EOS) is generated again with twice the steps, up to what the
        decoder holds. Its seed gives the same take, only longer, so a streamed row goes
        on where its listener is: the audio it sent is not sent again (``_resumed``), and
        a streamed reply ends as the buffered one does."""
        task = tasks[i]
        if options_of(task).max_tokens is not None:
            return result
        first = plan.max_new_tokens
        while isinstance(result, DiaCodes) and result.info.get("budget_limited"):
            budget = result.info["max_new_tokens"]
            limit = self.shape.room(result.info["prompt_frames"])
            if budget >= limit:
                break
            bigger = dataclasses.replace(plan, max_new_tokens=min(budget * 2, limit))
            ((_, longer),) = list(self._run(_resumed(tasks, i, result), [(i, notes)],
                                            bigger))
            if not isinstance(longer, DiaCodes):
                return longer if isinstance(longer, Cancelled) else result
            longer.notes.insert(0, (
                f"the automatic max_tokens ({first} steps) ran out before the speech ended, "
                f"so it was generated again with {longer.info['max_new_tokens']} steps"))
            result = longer
        return result

    def _run(self, tasks, members: list[tuple[int, list[str]]], plan: GenerationPlan):
        """Generate the tasks of ``members`` (index, notes) as one batch under ``plan``;
        yields (index, DiaCodes or error) per task."""
        rows: list[PreparedRow] = []
        for i, notes in members:
            task = tasks[i]
            if task.cancel.cancelled:
                yield i, Cancelled(f"cancelled before generation: {task.cancel.reason}",
                                   cause=task.cancel.cause)
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
        if plan.compile:  # torch.compile needs transformers' generate (a static cache)
            yield from self._run_generate(rows, plan)
            return
        loop = self._new_loop()
        joining = [self._loop_row(loop, row, plan) for row in rows]
        while joining or len(loop):
            for done in loop.step(joining):
                yield done.prepared.index, self._row_result(done)
            joining = []

    # -- continuous batching -------------------------------------------------------------

    continuous = True

    def serve(self, feed: TaskFeed) -> None:
        """Run the model's decoding loop until ``feed`` closes.

        Between two steps, tasks waiting in the feed (first come first served) join, up
        to ``max_batch_size`` rows and ``prefill_per_step`` prompt positions per step;
        rows that ended or were cancelled leave at once and their results go back through
        ``feed.done``. A task whose plan cannot share the loop (torch.compile) runs alone
        between two steps.
        """
        self._serve(feed, finish=self._finish)

    def _serve(self, feed: TaskFeed, finish) -> None:
        """``serve``, handing ``finish(DiaCodes or error)`` to ``feed.done``."""
        if self.model is None:
            raise RuntimeError("the Dia backend is not loaded")
        with torch.inference_mode():
            self._serve_loop(feed, finish)

    def _serve_loop(self, feed: TaskFeed, finish) -> None:
        loop = self._new_loop()
        waiting: list[LoopRow] = []
        limit = self.config.max_batch_size
        while True:
            idle = not len(loop) and not waiting
            tasks = feed.take(limit - len(loop) - len(waiting), block=idle)
            if idle and not tasks and feed.closed:
                return
            for task in tasks:
                waiting.extend(self._admit(loop, task, feed, finish))
            for row in [r for r in waiting if r.task.cancel.cancelled]:
                waiting.remove(row)
                feed.done(row.task, finish(self._row_result(row)))
            joining = pick_joiners(waiting, limit - len(loop), self.config.prefill_per_step)
            del waiting[:len(joining)]
            self._loop_state.update(rows=len(loop) + len(joining), waiting=len(waiting))
            if not joining and not len(loop):
                continue
            if len(loop):
                self._loop_state["joins_while_running"] += len(joining)
            try:
                gone = loop.step(joining)
            except Exception as exc:
                log.exception("a Dia decoding step failed")
                error = GenerationFailed(f"Dia generation failed: {exc}")
                failed = loop.fail_all()
                failed += [row for row in joining if all(row is not r for r in failed)]
                for row in failed:
                    feed.done(row.task, error)
                continue
            self._loop_state["joins"] += len(joining)
            self._loop_state.update(rows=len(loop), waiting=len(waiting))
            for row in gone:
                longer = self._longer(loop, row)
                if longer is not None:  # runs again with a larger automatic budget
                    waiting.insert(0, longer)
                    continue
                feed.done(row.task, finish(self._row_result(row)))
            self._loop_state.update(rows=len(loop), waiting=len(waiting))

    def loop_stats(self) -> dict[str, int]:
        return dict(self._loop_state)

    def _admit(self, loop: DecodingLoop, task: SynthesisTask, feed: TaskFeed,
               finish) -> list[LoopRow]:
        """A task from the feed as a loop row, or its answer (an error, or the result of
        a run apart) given at once."""
        try:
            plan, notes = self._plan(task)
            if task.cancel.cancelled:
                raise Cancelled(f"cancelled before generation: {task.cancel.reason}",
                                cause=task.cancel.cause)
            if plan.compile:  # cannot share the loop's forward pass
                (codes,) = self.generate_codes([task])
                feed.done(task, finish(codes))
                return []
            row = self._prepare(0, task, notes)
            if not plan.greedy:
                row.seed = (task.params.seed if task.params.seed is not None
                            else secrets.randbelow(2**32))
            return [self._loop_row(loop, row, plan)]
        except TTSFrameError as exc:
            feed.done(task, exc)
        except Exception as exc:
            log.exception("preparing a Dia input failed")
            feed.done(task, GenerationFailed(f"preparing the input for Dia failed: {exc}"))
        return []

    def _longer(self, loop: DecodingLoop, done: LoopRow) -> LoopRow | None:
        """The row again with twice the steps, when its automatic budget ran out before
        the speech ended (as ``_extend``); None otherwise."""
        task = done.task
        if options_of(task).max_tokens is not None or task.cancel.cancelled:
            return None
        frames = int(loop_codes(done, list(self.shape.delay),
                                self.model.config.decoder_config.pad_token_id).shape[0])
        limit = self.shape.room(done.prepared.prompt_frames)
        if frames < done.max_new - self.shape.tail or done.max_new >= limit:
            return None
        if done.streamer is not None:
            # Its listener has the audio streamed so far: the longer take (the same take,
            # its codes equal up to the old budget) goes on from there.
            sent = sum(piece.size for stream in done.streamer.rows for piece in stream.pieces)
            task.on_audio = _listening_past(task.on_audio, sent)
        plan = dataclasses.replace(done.plan, max_new_tokens=min(done.max_new * 2, limit))
        prepared = dataclasses.replace(done.prepared, notes=list(done.first_notes))
        row = self._loop_row(loop, prepared, plan)
        row.extended_from = done.extended_from or done.max_new
        return row

    def _finish(self, out: DiaCodes | BaseException) -> SynthesisResult | BaseException:
        if isinstance(out, BaseException):
            return out
        try:
            return self._decode(out)
        except Exception as exc:
            log.exception("Dia codec decoding failed")
            return GenerationFailed(f"decoding the generated audio failed: {exc}")

    # -- the decoding loop ---------------------------------------------------------------

    def _new_loop(self) -> DecodingLoop:
        decoder = self.model.config.decoder_config
        return DecodingLoop(self.model, delay=list(self.shape.delay),
                            eos=decoder.eos_token_id, pad=decoder.pad_token_id,
                            device=self.device)

    def _loop_row(self, loop: DecodingLoop, row: PreparedRow, plan: GenerationPlan) -> LoopRow:
        """A prepared row as a loop row: its budget fitted to the decoder's room after
        its own prompt, and its streamer."""
        first_notes = list(row.notes)
        start = int(row.inputs["decoder_attention_mask"].shape[1]) - self.shape.tail + 1
        max_new = plan.max_new_tokens
        room = self.shape.room(start - 1)  # start counts the start token
        if max_new > room:
            row.notes.append(f"max_tokens {max_new} was lowered to {room}: the audio prompt "
                             f"takes {start - 1} of the model's {self.shape.max_steps} "
                             "decoder steps")
            max_new = room
        streamer = None
        if row.task.on_audio is not None:
            decoder = self.model.config.decoder_config
            streamer = AudioStreamer(
                [row], codec=self.processor.audio_tokenizer, prompt_len=start,
                delay=list(self.shape.delay), hop=self.shape.hop, eos=decoder.eos_token_id,
                pad=decoder.pad_token_id, window=self.config.stream_frames,
                context=STREAM_CONTEXT_FRAMES)
        made = loop.make_row(row, plan, max_new, streamer)
        made.first_notes = first_notes
        return made

    def _row_result(self, done: LoopRow) -> DiaCodes | BaseException:
        """What a row that left the loop answers: its codes, or Cancelled."""
        row, plan, task = done.prepared, done.plan, done.prepared.task
        if task.cancel.cancelled:
            return Cancelled(f"cancelled after {done.steps} of {done.max_new} decoding "
                             f"steps: {task.cancel.reason}", cause=task.cancel.cause)
        row_codes = loop_codes(done, list(self.shape.delay),
                               self.model.config.decoder_config.pad_token_id).cpu().numpy()
        notes = list(row.notes)
        if done.extended_from:
            notes.insert(0, f"the automatic max_tokens ({done.extended_from} steps) ran out "
                            "before the speech ended, so it was generated again with "
                            f"{done.max_new} steps")
        if row_codes.shape[0] == 0:
            notes.append("the model ended speech immediately: the audio is empty")
        # The library forces EOS max(delay)+1 steps before the budget's end: a row
        # with that many frames stopped on its budget, not on its own EOS.
        exhausted = row_codes.shape[0] >= done.max_new - self.shape.tail
        if exhausted:
            notes.append(cut_note(task, done.max_new, row.prompt_frames, self.shape))
        info = {
            "frames": int(row_codes.shape[0]), "steps": done.steps,
            "max_new_tokens": done.max_new, "prompt_frames": row.prompt_frames,
            "batch_size": done.most_rows,
            "generate_s": round(time.perf_counter() - done.joined_at, 3),
            "greedy": plan.greedy, "compiled": False, "budget_limited": exhausted,
            "cfg_scale": plan.guidance_scale, "top_k": plan.top_k,
            "loop_s": round(loop_seconds(row_codes, SAMPLE_RATE / self.shape.hop), 2),
        }
        if not plan.greedy:
            info.update(temperature=plan.temperature, top_p=plan.top_p, seed=row.seed)
        streamed = done.streamer.finish(0, row_codes) if done.streamer is not None else None
        return DiaCodes(row_codes, done.steps, notes, info, streamed)

    # -- transformers' generate (torch.compile) --------------------------------------------

    def _run_generate(self, rows: list[PreparedRow], plan: GenerationPlan):
        decoder = self.model.config.decoder_config
        batch = collate(rows, self.processor.tokenizer.pad_token_id or 0,
                         decoder.bos_token_id, self.device)
        prompt_len = self.processor.get_audio_prompt_len(batch["decoder_attention_mask"])
        max_new = plan.max_new_tokens
        room = self.shape.room(prompt_len - 1)  # prompt_len counts the start token
        if max_new > room:
            for row in rows:
                row.notes.append(
                    f"max_tokens {max_new} was lowered to {room}: the audio prompt"
                    f"{'s of this batch take' if len(rows) > 1 else ' takes'} "
                    f"{prompt_len - 1} of the model's {self.shape.max_steps} decoder steps")
            max_new = room
        streamer = AudioStreamer(
            rows, codec=self.processor.audio_tokenizer, prompt_len=prompt_len,
            delay=list(self.shape.delay), hop=self.shape.hop, eos=decoder.eos_token_id,
            pad=decoder.pad_token_id, window=self.config.stream_frames,
            context=STREAM_CONTEXT_FRAMES)
        after_each_step = AfterEachStep([r.task for r in rows], prompt_len, max_new,
                                        streamer or None)
        started = time.perf_counter()
        sequences, compiled = self._generate(batch, plan, max_new, after_each_step, rows)
        elapsed = time.perf_counter() - started
        steps = int(sequences.shape[1]) - prompt_len
        codes = revert_delay(sequences, self.processor, list(self.shape.delay))
        pad = decoder.pad_token_id
        for k, row in enumerate(rows):
            if row.task.cancel.cancelled:
                yield row.index, Cancelled(
                    f"cancelled after {steps} of {max_new} decoding steps: "
                    f"{row.task.cancel.reason}", cause=row.task.cancel.cause)
                continue
            # As DiaProcessor.batch_decode: after the prompt, up to (excluding) the EOS.
            end = int(sequences.shape[1] - (sequences[k, :, 0] == pad).sum()) - 1
            row_codes = codes[k, :, prompt_len:end].T.cpu().numpy()
            notes = list(row.notes)
            if row_codes.shape[0] == 0:
                notes.append("the model ended speech immediately: the audio is empty")
            # The library forces EOS max(delay)+1 steps before the budget's end: a row
            # with that many frames stopped on its budget, not on its own EOS.
            exhausted = row_codes.shape[0] >= max_new - self.shape.tail
            if exhausted:
                notes.append(cut_note(row.task, max_new, row.prompt_frames, self.shape))
            info = {
                "frames": int(row_codes.shape[0]), "steps": steps,
                "max_new_tokens": max_new, "prompt_frames": row.prompt_frames,
                "batch_size": len(rows), "generate_s": round(elapsed, 3),
                "greedy": plan.greedy, "compiled": compiled, "budget_limited": exhausted,
                "cfg_scale": plan.guidance_scale, "top_k": plan.top_k,
                "loop_s": round(loop_seconds(row_codes, SAMPLE_RATE / self.shape.hop), 2),
            }
            if not plan.greedy:
                info.update(temperature=plan.temperature, top_p=plan.top_p, seed=row.seed)
            streamed = streamer.finish(k, row_codes)  # what is left of a streaming row
            yield row.index, DiaCodes(row_codes, steps, notes, info, streamed)

    def check(self, task: SynthesisTask) -> None:
        """The limits of one generation (``planning.check_limits``), checked before
        queueing and again per row."""
        check_limits(task, self.shape)

    def _prepare(self, index: int, task: SynthesisTask, notes: list[str]) -> PreparedRow:
        """Text and prompt of one row through the processor, exactly as the reference."""
        notes = list(notes)  # the task's own notes are reported by the core
        self.check(task)
        text = model_text(task)
        if task.language and not task.language.lower().startswith("en"):
            notes.append(f"language '{task.language}' was ignored: Dia speaks English only")
        samples = None
        prompt_frames = 0
        if task.prompt is not None:
            samples = prompt_samples(task.prompt, notes)
            prompt_frames = math.ceil(samples.size / self.shape.hop)
            if not task.prompt_transcript:
                notes.append("the audio prompt has no transcript: Dia clones a voice best when "
                             "the prompt's transcript is given")
        try:
            inputs = dict(self.processor(text=[text], padding=True, return_tensors="pt"))
            if samples is not None:  # the prompt's decoder prefix depends on its audio only
                inputs.update(self._prompts.get(task.prompt.prompt_id, samples,
                                                self._encode_prompt,
                                                transient=task.prompt.transient))
        except Exception as exc:
            what = f"audio prompt '{task.prompt.prompt_id}'" if samples is not None else "text"
            raise InvalidInput(f"the {what} could not be encoded for Dia: {exc}") from exc
        return PreparedRow(index, task, dict(inputs), prompt_frames, notes)

    def _encode_prompt(self, samples: np.ndarray) -> dict[str, Any]:
        """The decoder prefix (codec codes, delayed) the processor makes for ``samples``."""
        inputs = self.processor(text=["."], audio=[samples], sampling_rate=SAMPLE_RATE,
                                padding=True, return_tensors="pt")
        return {key: inputs[key] for key in ("decoder_input_ids", "decoder_attention_mask")}

    def _generate(self, batch, plan: GenerationPlan, max_new: int,
                  after_each_step: AfterEachStep, rows: list[PreparedRow]):
        # DiaSampler chooses every token; transformers' greedy step takes it.
        kwargs: dict[str, Any] = dict(batch, max_new_tokens=max_new,
                                      stopping_criteria=[after_each_step], do_sample=False,
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

    def _call(self, kwargs, plan: GenerationPlan, seeds: list[int | None], *, compile: bool):
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
