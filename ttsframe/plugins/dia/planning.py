"""What one task asks of Dia, decided before any tensor exists: its sampling parameters
against the checkpoint's defaults, its decoder-step budget, and the limits a generation
must fit (text bytes, with a prompt's transcript; an audio prompt's share of the decoder).

Tasks with equal plans can share one ``generate`` call (the plan is the batch key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np

from ttsframe import BackendOptions, InvalidInput, SynthesisTask

SAMPLE_RATE = 44100
MAX_TEXT_BYTES = 1024  # the encoder's positions; longer text is past what it was trained on
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


class DiaOptions(BackendOptions, kw_only=True, frozen=True):
    """Dia's own options (``DiaBackend.options``); ``None``: the checkpoint's default
    or the automatic budget. The API guide's flat ``cfg_scale``, ``max_tokens`` and
    ``use_torch_compile`` body fields are these."""

    cfg_scale: Annotated[Annotated[float, msgspec.Meta(ge=1.0, le=10.0)] | None, msgspec.Meta(
        description=(
        "Classifier-free guidance scale: how closely the speech follows the text "
        "(the checkpoint's default, 3.0, when left out)."))] = None
    max_tokens: Annotated[Annotated[int, msgspec.Meta(ge=100, le=10000)] | None, msgspec.Meta(
        description=(
        "Decoder steps for the speech (about 86 per second); left out: estimated from "
        "the text, and extended if the speech runs past it."))] = None
    use_torch_compile: Annotated[bool | None, msgspec.Meta(description=(
        "Run this request through torch.compile (CUDA only; [plugins.dia] compile "
        "decides when it is left out)."))] = None


def options_of(task: SynthesisTask) -> DiaOptions:
    """The task's Dia options (defaults for a task built without them)."""
    options = task.options
    return options if isinstance(options, DiaOptions) else DiaOptions()


@dataclass(frozen=True)
class DecoderShape:
    """The loaded checkpoint's decoder: positions, delay pattern, samples per frame."""

    max_steps: int = 3072
    delay: tuple[int, ...] = (0, 8, 9, 10, 11, 12, 13, 14, 15)
    hop: int = 512

    @property
    def tail(self) -> int:
        """Steps after channel 0's last frame until every channel has written it."""
        return max(self.delay) + 1

    def frames_of(self, seconds: float) -> int:
        return math.ceil(seconds * SAMPLE_RATE / self.hop)

    @property
    def least_steps(self) -> int:
        """The smallest budget that still yields frames (see ``MIN_FRAMES``)."""
        return self.tail + MIN_FRAMES

    def room(self, prompt_frames: int) -> int:
        """Decoder steps left for speech after the start token and an audio prompt."""
        return self.max_steps - 1 - prompt_frames


@dataclass(frozen=True)
class GenerationPlan:
    """One task's resolved sampling parameters; equal plans can share a batch."""

    greedy: bool  # the reference's temperature 0: guidance and the CFG filter still apply
    temperature: float | None
    top_p: float | None
    top_k: int | None  # also the CFG filter's k (the reference's cfg_filter_top_k)
    guidance_scale: float
    max_new_tokens: int
    compile: bool


def plan_generation(task: SynthesisTask, defaults: dict, shape: DecoderShape, *,
                    compile: bool) -> tuple[GenerationPlan, list[str]]:
    """Resolve a task's parameters against the checkpoint's ``defaults``, with notes on
    anything changed."""
    p, options = task.params, options_of(task)
    temperature = defaults["temperature"] if p.temperature is None else float(p.temperature)
    if not p.greedy and temperature <= 0:
        raise InvalidInput("temperature must be above 0; use greedy for deterministic "
                           "decoding")
    max_new, notes = max_new_tokens(task, shape)
    greedy = bool(p.greedy)
    plan = GenerationPlan(
        greedy=greedy,
        temperature=None if greedy else temperature,
        top_p=None if greedy else (defaults["top_p"] if p.top_p is None else float(p.top_p)),
        top_k=defaults["top_k"] if p.top_k is None else int(p.top_k),
        guidance_scale=(defaults["guidance_scale"] if options.cfg_scale is None
                        else float(options.cfg_scale)),
        max_new_tokens=max_new,
        compile=compile)
    return plan, notes


def max_new_tokens(task: SynthesisTask, shape: DecoderShape) -> tuple[int, list[str]]:
    """Requested or automatic decoder steps, before the per-batch prompt clamp.

    Auto: ``ceil((bytes / 12 + 2 s) * 86.13 frames/s) + 16``, rounded up to a multiple
    of 128, within [256, 3072]; the model normally ends speech (EOS) well before it.
    ``bytes`` is the text's size, or ``text_bytes_hint`` (a long text's largest chunk)
    when that is larger.
    """
    floor = shape.least_steps
    ceiling = shape.room(0)
    requested = options_of(task).max_tokens
    if requested is None:
        # Chunks of one long text estimate from their largest chunk: same bucket, so
        # they can share a batch.
        size = max(len(task.text.encode()), task.text_bytes_hint or 0)
        steps = shape.frames_of(size / AUTO_BYTES_PER_SECOND + AUTO_MARGIN_S) + shape.tail
        steps = math.ceil(steps / AUTO_BUCKET) * AUTO_BUCKET
        return min(max(steps, AUTO_MIN_TOKENS), ceiling), []
    if requested < floor:
        return floor, [f"max_tokens {requested} was raised to {floor}: Dia ends every "
                       f"generation {shape.tail} steps after its last frame"]
    if requested > ceiling:
        return ceiling, [f"max_tokens {requested} was lowered to {ceiling}: the model "
                         f"holds {shape.max_steps} decoder steps, including the start "
                         "token and any audio prompt"]
    return requested, []


def check_limits(task: SynthesisTask, shape: DecoderShape) -> None:
    """The limits of one generation: text, text with the prompt's transcript, and the
    prompt's share of the decoder."""
    if not task.text.strip():
        raise InvalidInput("the text is empty: there is nothing to speak")
    if task.prompt is not None:
        prompt = task.prompt
        seconds = max(np.shape(prompt.samples), default=0) / prompt.sample_rate
        if shape.room(shape.frames_of(seconds)) < shape.least_steps:
            raise InvalidInput(
                f"audio prompt '{prompt.prompt_id}' is {seconds:.1f} s long; with it the "
                f"model has no room left for speech (it holds about "
                f"{shape.max_steps * shape.hop / SAMPLE_RATE:.0f} s in all): use a 5-10 s "
                "prompt")
    text = model_text(task)
    size = len(text.encode())
    if size > MAX_TEXT_BYTES:
        what = "text with the voice's prompt transcript" if text is not task.text else "text"
        raise InvalidInput(f"the {what} is {size} bytes; Dia reads at most "
                           f"{MAX_TEXT_BYTES} bytes per generation: split the text")


def model_text(task: SynthesisTask) -> str:
    """What the encoder reads: the prompt's transcript, a space, then the text."""
    if task.prompt is not None and task.prompt_transcript:
        return task.prompt_transcript + " " + task.text
    return task.text


def cut_note(task: SynthesisTask, max_new: int, prompt_frames: int,
             shape: DecoderShape) -> str:
    """What to tell a caller whose speech used its whole budget without ending."""
    limit = shape.room(prompt_frames)
    text = (f"speech was cut: it used all {max_new} decoding steps of its budget before "
            "the model ended it, so the audio may stop mid-word")
    if max_new >= limit:
        return (f"{text}; that is all the model's decoder holds"
                f"{' with this audio prompt' if prompt_frames else ''}: "
                "split the text into shorter requests")
    if options_of(task).max_tokens is not None:
        return f"{text}; send a larger max_tokens (up to {limit}) or leave it out"
    return text
