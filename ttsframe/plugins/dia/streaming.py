"""Audio during generation: decode Dia's codec frames as soon as they are final.

Dia writes its 9 codebooks with a delay pattern (``[0, 8, ..., 15]``): frame ``t`` is
complete once decoding step ``t + 15`` has run. The DAC decoder is not causal: a changed
frame alters the audio about 9.3 frames to either side, so a window is decoded with
``context`` frames (10) on both sides and only its middle is kept. Pieces decoded that
way join into exactly the audio of one whole decode (to float rounding, ~1e-6), which
is what a task then returns: the concatenation of what it streamed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

log = logging.getLogger("ttsframe.dia")


class _RowStream:
    """One streaming row: how far it has been sent, and whether it has ended."""

    def __init__(self, index: int, task: Any) -> None:
        self.index, self.task = index, task
        self.sent = 0  # frames already handed to on_audio
        self.end: int | None = None  # frames before the end of speech, once known
        self.scanned = 0  # channel-0 frames searched for end of speech
        self.pieces: list[np.ndarray] = []
        self.closed = False

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)


class AudioStreamer:
    """Called after every decoding step with the token ids so far ``(rows * 9, length)``;
    hands each streaming row's newly final audio to its task's ``on_audio``."""

    def __init__(self, rows: list[Any], *, codec: Any, prompt_len: int, delay: list[int],
                 hop: int, eos: int, pad: int, window: int, context: int) -> None:
        self.rows = [_RowStream(k, row.task) for k, row in enumerate(rows)
                     if row.task.on_audio is not None]
        self.codec, self.prompt_len, self.delay, self.hop = codec, prompt_len, delay, hop
        self.max_delay = max(delay)
        self.eos, self.pad = eos, pad
        self.window, self.context = window, context
        self.channels = len(delay)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def step(self, input_ids: torch.Tensor) -> None:
        seq = input_ids.view(-1, self.channels, input_ids.shape[-1])
        # Frames with every codebook written: position p needs step p + max_delay.
        complete = seq.shape[-1] - self.max_delay - self.prompt_len
        for row in self.rows:
            if row.closed or row.task.cancel.cancelled:
                continue
            self._find_end(row, seq, complete)
            if row.end is not None and complete >= row.end:
                self._emit(row, seq, row.end, final=True)
            elif complete - self.context - row.sent >= self.window:
                self._emit(row, seq, complete - self.context, limit=complete)

    def finish(self, row_index: int, codes: np.ndarray) -> np.ndarray | None:
        """After generation: send what is left of row ``row_index`` from its final codes
        ``(frames, 9)`` and return all its audio; None if the row does not stream."""
        row = next((r for r in self.rows if r.index == row_index), None)
        if row is None:
            return None
        if not row.closed and codes.shape[0] > row.sent:
            start = max(0, row.sent - self.context)
            window = torch.from_numpy(np.ascontiguousarray(codes[start:].T))[None]
            self._send(row, self._decode(window)[(row.sent - start) * self.hop:])
        row.sent, row.closed = codes.shape[0], True
        return row.samples

    # -- internals -------------------------------------------------------------------

    def _find_end(self, row: _RowStream, seq: torch.Tensor, complete: int) -> None:
        """End of speech: the first EOS (or padding) in codebook 0, which has no delay."""
        if row.end is not None:
            return
        written = seq.shape[-1] - self.prompt_len
        if written <= row.scanned:
            return
        first = seq[row.index, 0, self.prompt_len + row.scanned:]
        hits = ((first == self.eos) | (first == self.pad)).nonzero()
        if hits.numel():
            row.end = row.scanned + int(hits[0, 0])
        row.scanned = written

    def _emit(self, row: _RowStream, seq: torch.Tensor, upto: int, *, final: bool = False,
              limit: int | None = None) -> None:
        """Decode frames [sent, upto) with context and send them."""
        if upto <= row.sent:
            row.closed = row.closed or final
            return
        start = max(0, row.sent - self.context)
        stop = upto if final else min(upto + self.context, limit if limit is not None else upto)
        window = self._codes(seq, row.index, start, stop)
        audio = self._decode(window)
        self._send(row, audio[(row.sent - start) * self.hop:(upto - start) * self.hop])
        row.sent = upto
        row.closed = final

    def _codes(self, seq: torch.Tensor, k: int, start: int, stop: int) -> torch.Tensor:
        """Frames [start, stop) of row ``k`` with the delay undone: ``(1, 9, frames)``."""
        base = self.prompt_len
        rows = [seq[k, c, base + start + d: base + stop + d] for c, d in enumerate(self.delay)]
        return torch.stack(rows)[None]

    def _decode(self, codes: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            audio = self.codec.decode(audio_codes=codes.to(self.codec.device)).audio_values
        samples = audio.float().cpu().numpy().reshape(-1)
        return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)

    def _send(self, row: _RowStream, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        samples = np.ascontiguousarray(samples)
        row.pieces.append(samples)
        try:
            row.task.on_audio(samples)
        except Exception:  # a client gone away must not fail the batch
            log.exception("on_audio callback failed")
