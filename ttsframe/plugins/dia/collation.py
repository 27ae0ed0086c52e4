"""Rows in and out of one batched ``generate`` call.

Each row goes through ``DiaProcessor`` alone (so one bad prompt fails only its row);
``collate`` then pads them the way the processor pads a batch (text right-padded with the
tokenizer's pad, decoder prefix left-padded with BOS), which also lets rows with and
without an audio prompt share a batch. ``revert_delay`` undoes the delay pattern of what
comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ttsframe import AudioPrompt, InvalidInput, SynthesisTask
from ttsframe.plugins.dia.planning import SAMPLE_RATE


@dataclass
class PreparedRow:
    """A task's processor output and what generating it reported."""

    index: int  # the task's place in the backend call
    task: SynthesisTask
    inputs: dict[str, Any]
    prompt_frames: int
    notes: list[str] = field(default_factory=list)
    seed: int | None = None  # sampling only: the request's, else drawn for this call


def prompt_samples(prompt: AudioPrompt, notes: list[str]) -> np.ndarray:
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


def collate(rows: list[PreparedRow], text_pad: int, bos: int, device) -> dict[str, Any]:
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


def revert_delay(sequences, processor, delay):
    """(batch, steps, channels) delayed decoder output -> (batch, channels, frames)."""
    bsz, seq_len, channels = sequences.shape
    index = processor.build_indices(bsz=bsz, seq_len=seq_len, num_channels=channels,
                                    delay_pattern=delay, revert=True)
    return processor.apply_audio_delay(audio=sequences, pad_token_id=-1, bos_token_id=-1,
                                       precomputed_idx=index).transpose(1, 2)
