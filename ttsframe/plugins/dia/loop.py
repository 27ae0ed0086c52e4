"""Dia's decoding loop: one running batch whose rows join and leave between two steps.

Each row is one request with its own parameters, seed, budget and audio prompt. A row
joins by running its text through the encoder and its decoder prefix (start token and
audio prompt) through the decoder alone, exactly as a solo ``generate`` would; its
caches are then merged into the running batch's: the self-attention cache is padded on
the left (masked, so the padding is never attended to) and the cross-attention cache on
the right (masked likewise), and every row is fed its own positions, so it computes
what it would alone. A row leaves the moment it has ended (or was cancelled), its
cache rows dropped; padding every remaining row shares is cut off.

Per step, as transformers' Dia ``generate`` does it for one row: the forward pass of the
conditional and the unconditional row, the token choice of ``sampling.py`` (rows with
equal parameters chosen together), the delay-pattern EOS rule (EOS in channel 0, then
in channel c ``delay[c]`` steps later; forced ``tail`` steps before the budget's end),
PAD after a channel's EOS, and the audio prompt's frames forced where the delayed prefix
holds them. So on CPU in float32 a row's codes equal its solo run wherever it joined.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ttsframe.plugins.dia.collation import PreparedRow
from ttsframe.plugins.dia.planning import GenerationPlan
from ttsframe.plugins.dia.sampling import draw, filtered_logits, warped_logits
from ttsframe.plugins.dia.stopping import PROGRESS_EVERY
from ttsframe.plugins.dia.streaming import AudioStreamer

log = logging.getLogger("ttsframe.dia")


@dataclass
class LoopRow:
    """One request in the loop and its decoding state."""

    prepared: PreparedRow
    plan: GenerationPlan
    max_new: int  # decoder steps after the prefix (the budget, clamped to the decoder)
    prefix: torch.Tensor  # (positions, channels): the delayed prefix; PAD where free
    start: int  # positions fed before the first step (start token and prompt frames)
    seq: torch.Tensor  # (start + max_new, channels) tokens so far (``length`` of them)
    length: int
    generator: torch.Generator | None
    streamer: AudioStreamer | None
    joined_at: float = field(default_factory=time.perf_counter)
    most_rows: int = 1  # the largest batch it ran in
    first_notes: list[str] = field(default_factory=list)  # its notes before the loop's
    extended_from: int | None = None  # the automatic budget it first ran out of

    @property
    def task(self):
        return self.prepared.task

    @property
    def steps(self) -> int:
        return self.length - self.start


class DecodingLoop:
    """The running batch of one model. Not thread-safe: one thread drives it."""

    def __init__(self, model: Any, *, delay: list[int], eos: int, pad: int,
                 device: Any) -> None:
        self.model, self.device = model, device
        self.delay = torch.tensor(delay, device=device)
        self.tail = max(delay) + 1
        self.channels = len(delay)
        self.eos, self.pad = eos, pad
        self.rows: list[LoopRow] = []
        self._cache = None  # EncoderDecoderCache of 2 * rows (conditional rows first)
        self._enc = None  # (2 * rows, text, hidden) encoder states, right-padded
        self._enc_mask = None  # (2 * rows, text)
        self._dec_mask = None  # (2 * rows, positions), left-padded
        # Per row, as transformers' EOS rule and stopping keep them: channel 0 ended (EOS
        # drawn or the budget's end), steps until each channel's EOS once ended, the
        # channels that wrote their EOS, and the tokens of the last step.
        self._ended = torch.zeros(0, dtype=torch.bool, device=device)
        self._countdown = torch.zeros((0, self.channels), dtype=torch.long, device=device)
        self._finished = torch.zeros((0, self.channels), dtype=torch.bool, device=device)
        self._last = torch.zeros((0, self.channels), dtype=torch.long, device=device)
        self._vocab_index = None
        self.joins = 0  # rows that joined, since start

    def __len__(self) -> int:
        return len(self.rows)

    # -- rows in ---------------------------------------------------------------------------

    def make_row(self, prepared: PreparedRow, plan: GenerationPlan, max_new: int,
                 streamer: AudioStreamer | None) -> LoopRow:
        prefix = prepared.inputs["decoder_input_ids"][0].to(self.device).long()
        start = int(prefix.shape[0] - (prefix[:, 0] == self.pad).sum())
        seq = torch.full((start + max_new, self.channels), self.pad, dtype=torch.long,
                         device=self.device)
        seq[:start] = prefix[:start]
        generator = None
        if not plan.greedy:
            generator = torch.Generator(device=self.device).manual_seed(prepared.seed)
        return LoopRow(prepared, plan, max_new, prefix, start, seq, start, generator,
                       streamer)

    def _prefill(self, row: LoopRow):
        """The row's encoder pass and decoder prefix alone: (caches, first logits)."""
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        inputs = row.prepared.inputs
        ids = inputs["input_ids"].to(self.device)
        mask = inputs["attention_mask"].to(self.device)
        ids = torch.cat([ids, torch.zeros_like(ids)])  # the unconditional row: no text
        mask = mask.repeat(2, 1)
        enc = self.model.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        dec_in = row.seq[None, :row.start].repeat(2, 1, 1)
        dec_mask = torch.ones((2, row.start), dtype=torch.long, device=self.device)
        cache = EncoderDecoderCache(DynamicCache(config=self.model.config),
                                    DynamicCache(config=self.model.config))
        out = self.model.model(encoder_outputs=(enc,), attention_mask=mask,
                               decoder_input_ids=dec_in, decoder_attention_mask=dec_mask,
                               cache=cache, use_cache=True)
        # Logits of the last position only: the whole prefix's would cost more than
        # the rest of the join (positions x channels x vocabulary).
        logits = self.model.logits_dense(out.last_hidden_state[:, -1:])
        return (cache, enc, mask, dec_mask), logits.view(2, self.channels, -1)

    def _merge(self, state) -> None:
        """Append a prefilled row's caches to the running batch's."""
        cache, enc, enc_mask, dec_mask = state
        if self._cache is None:
            self._cache, self._enc, self._enc_mask, self._dec_mask = state
            return
        n = self._dec_mask.shape[0] // 2
        positions = max(self._dec_mask.shape[1], dec_mask.shape[1])
        text = max(self._enc_mask.shape[1], enc_mask.shape[1])

        def both(old, new, fit):
            old, new = fit(old), fit(new)
            return torch.cat([old[:n], new[:1], old[n:], new[1:]])

        def left(width):
            return lambda t: torch.nn.functional.pad(
                t, (0, 0, width - t.shape[-2], 0) if t.ndim == 4 else (width - t.shape[-1], 0))

        def right(width):
            return lambda t: torch.nn.functional.pad(
                t, (0, 0, 0, width - t.shape[-2]) if t.ndim >= 3 else (0, width - t.shape[-1]))

        for mine, theirs in zip(self._cache.self_attention_cache.layers,
                                cache.self_attention_cache.layers, strict=True):
            mine.keys = both(mine.keys, theirs.keys, left(positions))
            mine.values = both(mine.values, theirs.values, left(positions))
        for mine, theirs in zip(self._cache.cross_attention_cache.layers,
                                cache.cross_attention_cache.layers, strict=True):
            mine.keys = both(mine.keys, theirs.keys, right(text))
            mine.values = both(mine.values, theirs.values, right(text))
        self._dec_mask = both(self._dec_mask, dec_mask, left(positions))
        self._enc = both(self._enc, enc, right(text))
        self._enc_mask = both(self._enc_mask, enc_mask, right(text))

    # -- rows out --------------------------------------------------------------------------

    def _keep(self, keep: list[int]) -> None:
        """Drop every row not in ``keep`` (indices into ``rows``), and the padding left of
        every remaining row."""
        n = len(self.rows)
        self.rows = [self.rows[k] for k in keep]
        rows = torch.tensor(keep, dtype=torch.long, device=self.device)
        self._ended, self._countdown = self._ended[rows], self._countdown[rows]
        self._finished, self._last = self._finished[rows], self._last[rows]
        if not keep:
            self._cache = self._enc = self._enc_mask = self._dec_mask = None
            return
        if len(keep) < n:
            index = torch.tensor(keep + [k + n for k in keep], device=self.device)
            for layers in (self._cache.self_attention_cache.layers,
                           self._cache.cross_attention_cache.layers):
                for layer in layers:
                    layer.keys = layer.keys.index_select(0, index)
                    layer.values = layer.values.index_select(0, index)
            self._dec_mask = self._dec_mask.index_select(0, index)
            self._enc = self._enc.index_select(0, index)
            self._enc_mask = self._enc_mask.index_select(0, index)
        unused = int(self._dec_mask.argmax(dim=1).min())  # left padding of every row
        if unused:
            self._dec_mask = self._dec_mask[:, unused:]
            for layer in self._cache.self_attention_cache.layers:
                layer.keys = layer.keys[:, :, unused:]
                layer.values = layer.values[:, :, unused:]
        text = int(self._enc_mask.sum(dim=1).max())  # right padding of every row
        if text < self._enc_mask.shape[1]:
            self._enc, self._enc_mask = self._enc[:, :text], self._enc_mask[:, :text]
            for layer in self._cache.cross_attention_cache.layers:
                layer.keys = layer.keys[:, :, :text]
                layer.values = layer.values[:, :, :text]

    # -- one step --------------------------------------------------------------------------

    def step(self, joining: list[LoopRow]) -> list[LoopRow]:
        """One decoding step of every row, after which ``joining`` are rows of the loop;
        returns the rows that ended in it (cancelled ones included), now out of it."""
        logits = []
        if self.rows:
            last = self._last
            positions = torch.tensor([row.length - 1 for row in self.rows],
                                     device=self.device)
            ones = torch.ones((self._dec_mask.shape[0], 1), dtype=torch.long,
                              device=self.device)
            self._dec_mask = torch.cat([self._dec_mask, ones], dim=1)
            out = self.model(encoder_outputs=(self._enc,), attention_mask=self._enc_mask,
                             decoder_input_ids=last[:, None].repeat(2, 1, 1),
                             decoder_position_ids=positions[:, None].repeat(2, 1),
                             decoder_attention_mask=self._dec_mask,
                             cache=self._cache, use_cache=True)
            logits.append(out.logits.view(2, len(self.rows), self.channels, -1))
        for row in joining:
            state, first = self._prefill(row)
            self._merge(state)
            self.rows.append(row)
            self.joins += 1
            logits.append(first.view(2, 1, self.channels, -1))
        if joining:
            n = len(joining)
            self._ended = torch.cat([self._ended, self._ended.new_zeros(n)])
            self._countdown = torch.cat([self._countdown, self.delay.repeat(n, 1)])
            self._finished = torch.cat([self._finished, self._finished.new_zeros(
                (n, self.channels))])
        scores = torch.cat(logits, dim=1)  # (2, rows, channels, vocab)
        self._append(self._choose(scores[0], scores[1]))
        return self._after_step()

    def _choose(self, cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
        """(rows, channels) tokens, each row chosen by its own parameters."""
        rows, channels, vocab = cond.shape
        if self._vocab_index is None or self._vocab_index.shape[0] != vocab:
            self._vocab_index = torch.arange(vocab, device=cond.device)
        groups: dict[tuple, list[int]] = {}
        for k, row in enumerate(self.rows):
            p = row.plan
            groups.setdefault((p.guidance_scale, p.top_k, p.temperature, p.top_p), []).append(k)
        alone = len(groups) == 1  # every row alike: no gathering and scattering
        logits = None if alone else torch.empty_like(cond)
        for (cfg_scale, top_k, temperature, top_p), members in groups.items():
            index = None if alone else torch.tensor(members, device=cond.device)
            picked = filtered_logits(
                (cond if alone else cond.index_select(0, index)).view(-1, vocab),
                (uncond if alone else uncond.index_select(0, index)).view(-1, vocab),
                cfg_scale=cfg_scale, top_k=top_k, channels=channels, eos=self.eos)
            if temperature is not None:
                picked = warped_logits(picked, temperature=temperature, top_k=top_k,
                                       top_p=top_p, eos=self.eos, index=self._vocab_index)
            if alone:
                logits = picked.view(rows, channels, vocab)
            else:
                logits[index] = picked.view(len(members), channels, vocab)
        self._eos_rule(logits)
        tokens = torch.empty((rows, channels), dtype=torch.long, device=cond.device)
        for (_, _, temperature, _), members in groups.items():
            index = None if alone else torch.tensor(members, device=cond.device)
            picked = (logits if alone else logits.index_select(0, index)).view(-1, vocab)
            if temperature is None:  # the reference's temperature 0
                chosen = picked.argmax(dim=-1)
            else:
                chosen = draw(picked, [self.rows[k].generator for k in members], channels)
            if alone:
                return chosen.view(rows, channels)
            tokens[index] = chosen.view(len(members), channels)
        return tokens

    def _eos_rule(self, logits: torch.Tensor) -> None:
        """transformers' ``DiaEOSDelayPatternLogitsProcessor``, with each row's own
        length and budget, in place on ``(rows, channels, vocab)``."""
        # The library forces EOS ``tail`` steps before the end of the budget.
        at_limit = torch.tensor([row.length == row.seq.shape[0] - self.tail
                                 for row in self.rows], device=logits.device)
        self._ended |= (logits[:, 0].argmax(dim=-1) == self.eos) | at_limit
        forced = self._ended[:, None] & (self._countdown == 0)
        logits.masked_fill_(forced[..., None], -math.inf)
        logits[..., self.eos].masked_fill_(forced, 0.0)
        self._countdown -= self._ended[:, None].long()

    def _append(self, tokens: torch.Tensor) -> None:
        """Each row's tokens of this step: PAD after a channel's EOS, the prompt's
        delayed frames where the prefix holds them."""
        tokens = torch.where(self._finished, self.pad, tokens)
        self._finished |= tokens == self.eos
        rows = len(self.rows)
        for k, row in enumerate(self.rows):
            if row.length < row.prefix.shape[0]:  # within the delayed prompt
                forced = row.prefix[row.length]
                tokens[k] = torch.where(forced == self.pad, tokens[k], forced)
            row.seq[row.length] = tokens[k]
            row.length += 1
            row.most_rows = max(row.most_rows, rows)
        self._last = tokens

    def _after_step(self) -> list[LoopRow]:
        """Progress, streaming and cancellation of each row; rows that ended leave."""
        keep, gone = [], []
        finished = self._finished.all(dim=1).tolist()
        for k, row in enumerate(self.rows):
            task = row.task
            ending = finished[k] or row.length >= row.seq.shape[0]
            if task.on_progress is not None and (row.steps % PROGRESS_EVERY == 0 or ending):
                try:
                    task.on_progress(row.steps, row.max_new)
                except Exception:
                    log.exception("on_progress callback failed")
            if row.streamer is not None:
                row.streamer.step(row.seq[:row.length].T)
            if ending or task.cancel.cancelled:
                gone.append(row)
            else:
                keep.append(k)
        if gone:
            self._keep(keep)
        return gone

    def fail_all(self) -> list[LoopRow]:
        """Empty the loop (after an error in a step): every row leaves."""
        rows = self.rows
        self._keep([])
        return rows


def row_codes(row: LoopRow, delay: list[int], pad: int):
    """The row's frames after its prefix, up to (excluding) the EOS: ``(frames, 9)``, as
    ``DiaProcessor.batch_decode`` takes them (the delay undone)."""
    seq = row.seq[:row.length]
    ended = (seq[row.start:, 0] == pad).nonzero()
    # Channel 0 holds EOS, then PAD: the EOS sits just before the first PAD. A row that
    # ran out of positions has its EOS at the budget's forced step.
    end = row.start + int(ended[0, 0]) - 1 if ended.numel() else row.length - 1
    frames = max(0, end - row.start)
    steps = torch.arange(frames, device=seq.device)[:, None] + row.start
    index = steps + torch.tensor(delay, device=seq.device)[None, :]
    index = index.clamp(max=row.length - 1)
    return seq.gather(0, index)


def prefill_cost(row: LoopRow) -> int:
    """The decoder positions a join runs through (the prefill budget's unit)."""
    return row.start


def pick_joiners(waiting: list[LoopRow], room: int, budget: int) -> list[LoopRow]:
    """First come first served: as many waiting rows as fit ``room`` and the prefill
    ``budget`` (positions per step), always at least one when there is room."""
    chosen, spent = [], 0
    for row in waiting[:room]:
        cost = prefill_cost(row)
        if chosen and spent + cost > budget:
            break
        chosen.append(row)
        spent += cost
    return chosen

