"""One Dia decoding step's token choice, as the reference implementation makes it.

``DiaSampler`` is the only logits processor of the backend's ``generate`` calls (the
model subclass ``reference_sampling_model`` installs it in place of transformers' own
list, and generation runs in transformers' greedy mode, which takes the token it marks).
Per step:

1. guidance ``cond + cfg_scale * (cond - uncond)`` at every scale, 1.0 included;
2. the CFG filter: the ``top_k`` best guided tokens are kept, with their *conditional*
   logits;
3. tokens above EOS are masked, and EOS and above in channels 1-8;
4. temperature; EOS forced in channel 0 when it is the best token there, else suppressed;
   top-k again (exactly k tokens, as the reference; transformers also keeps ties with
   the k-th); top-p among those k; transformers' delay-pattern EOS rule (``delay``);
5. the draw: each row from its own ``torch.Generator``, as ``torch.multinomial`` draws
   (``argmax(probs / Exp(1) noise)``, bit for bit), all rows in one ``argmax``.

``temperature=None`` is the reference's temperature 0: the argmax after steps 1-3, so
greedy decoding keeps guidance and the filter. A row's tokens depend on its input and
seed only, never on its batch mates.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class DiaSampler:
    """Logits processor for ``(2 * rows * channels, vocab)`` scores (conditional rows
    first, then the unconditional ones, as transformers' Dia lays out its CFG batch)."""

    def __init__(self, *, seeds: list[int], channels: int, eos: int, cfg_scale: float,
                 top_k: int | None, temperature: float | None, top_p: float | None,
                 delay, device) -> None:
        self.channels, self.eos = channels, eos
        self.cfg_scale, self.top_k = cfg_scale, top_k
        self.temperature, self.top_p = temperature, top_p
        self.delay = delay  # transformers' DiaEOSDelayPatternLogitsProcessor
        self.generators = []
        if temperature is not None:
            for seed in seeds:
                self.generators.append(torch.Generator(device=device).manual_seed(seed))
        self._vocab_index = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        half = scores.shape[0] // 2
        if half * 2 != scores.shape[0] or half != input_ids.shape[0]:
            raise RuntimeError(f"expected conditional and unconditional scores for "
                               f"{input_ids.shape[0]} rows, got {scores.shape[0]}")
        logits = filtered_logits(scores[:half], scores[half:], cfg_scale=self.cfg_scale,
                                 top_k=self.top_k, channels=self.channels, eos=self.eos)
        if self.temperature is not None:
            if self._vocab_index is None:
                self._vocab_index = torch.arange(logits.shape[-1], device=logits.device)
            logits = warped_logits(logits, temperature=self.temperature, top_k=self.top_k,
                                   top_p=self.top_p, eos=self.eos, index=self._vocab_index)
        logits = self.delay(input_ids, logits)
        if self.temperature is None:  # the reference's temperature 0
            return _one_hot(logits, logits.argmax(dim=-1, keepdim=True))
        rows = len(self.generators)
        if logits.shape[0] != rows * self.channels:
            raise RuntimeError(f"expected scores for {rows} rows of {self.channels} channels, "
                               f"got {logits.shape[0]}")
        return _one_hot(logits, draw(logits, self.generators, self.channels)[:, None])


def filtered_logits(cond: torch.Tensor, uncond: torch.Tensor, *, cfg_scale: float,
                    top_k: int | None, channels: int, eos: int) -> torch.Tensor:
    """Steps 1-3 for ``(rows * channels, vocab)`` conditional and unconditional logits."""
    logits = cond + cfg_scale * (cond - uncond)
    vocab = logits.shape[-1]
    if top_k is not None:
        k = min(top_k, vocab)
        kept = torch.topk(logits, k, dim=-1).indices
        logits = torch.full_like(cond, -math.inf).scatter_(-1, kept, cond.gather(-1, kept))
    per_channel = logits.view(-1, channels, vocab)
    per_channel[:, 1:, eos:] = -math.inf
    per_channel[:, 0, eos + 1:] = -math.inf
    return logits


def warped_logits(logits: torch.Tensor, *, temperature: float, top_k: int | None,
                  top_p: float | None, eos: int, index: torch.Tensor) -> torch.Tensor:
    """Step 4 (before the delay-pattern rule) of a sampled step; ``index`` is
    ``arange(vocab)``."""
    vocab = logits.shape[-1]
    if temperature != 1.0:
        logits = logits / temperature
    eos_best = (logits.argmax(dim=-1, keepdim=True) == eos)  # its argmax ignores scaling
    logits = logits.masked_fill(eos_best & (index < eos), -math.inf)
    logits = logits.masked_fill(~eos_best & (index == eos), -math.inf)
    if top_k is not None:
        # Top-k, then top-p on those k values only (already in order): no sort of the
        # whole vocabulary, which cost more than everything else in a step.
        best, order = torch.topk(logits, min(top_k, vocab), dim=-1)
        if top_p is not None and top_p < 1.0:
            rising = best.flip(-1)  # as transformers' top-p: ascending order
            low = rising.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
            low[..., -1:] = False  # keep at least one token
            best = rising.masked_fill(low, -math.inf).flip(-1)
        logits = torch.full_like(logits, -math.inf).scatter_(-1, order, best)
    elif top_p is not None and top_p < 1.0:
        ordered, order = torch.sort(logits, descending=False)
        low = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
        low[..., -1:] = False  # keep at least one token
        logits = logits.masked_fill(low.scatter(-1, order, low), -math.inf)
    return logits


def draw(logits: torch.Tensor, generators: list, channels: int) -> torch.Tensor:
    """Step 5: ``(rows * channels,)`` tokens, row r drawn from ``generators[r]``."""
    probs = logits.softmax(dim=-1)
    noise = torch.empty((len(generators), channels, logits.shape[-1]), dtype=probs.dtype,
                        device=probs.device)
    for row, generator in zip(noise, generators, strict=True):
        row.exponential_(1, generator=generator)
    return (probs / noise.view_as(probs)).argmax(dim=-1)


def _one_hot(scores: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Scores whose argmax (transformers' greedy step) is ``tokens``."""
    return torch.full_like(scores, -math.inf).scatter_(-1, tokens, 0.0)


def reference_sampling_model():
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
