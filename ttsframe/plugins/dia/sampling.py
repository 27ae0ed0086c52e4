"""Per-row random streams for sampled Dia generation.

transformers draws every row of a ``generate`` batch from torch's one global random
stream, so a seeded row's tokens would depend on its batch mates. ``RowSampler`` is the
last logits processor: it samples each row's channels from that row's own generator, out
of exactly the distribution transformers would sample from (after guidance, temperature,
top-k/top-p and Dia's EOS rules), and hands back a one-hot distribution (``-inf`` but
for the chosen token), so transformers' own draw can only pick that token. A row's codes
then depend on its input and seed alone, whether it runs alone or in a batch.
"""

from __future__ import annotations

import math

import torch


class RowSampler:
    """Logits processor that samples ``(rows * channels, vocab)`` scores row by row.

    ``seeds`` holds one seed per row of the batch, ``None`` for a fresh random one. Rows
    are the conditional rows: with guidance, transformers has already folded the
    unconditional rows in by the time processors after it run.
    """

    def __init__(self, seeds: list[int | None], channels: int, device) -> None:
        self.channels = channels
        self.generators = []
        for seed in seeds:
            generator = torch.Generator(device=device)
            if seed is None:
                generator.seed()  # fresh randomness
            else:
                generator.manual_seed(seed)
            self.generators.append(generator)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows = len(self.generators)
        if scores.shape[0] != rows * self.channels:
            raise RuntimeError(f"expected scores for {rows} rows of {self.channels} channels, "
                               f"got {scores.shape[0]}")
        probs = torch.nn.functional.softmax(scores, dim=-1)  # as transformers' _sample does
        per_row = probs.view(rows, self.channels, -1)
        tokens = torch.cat([torch.multinomial(per_row[r], 1, generator=generator)
                            for r, generator in enumerate(self.generators)])
        chosen = torch.full_like(scores, -math.inf)
        return chosen.scatter_(1, tokens, 0.0)
