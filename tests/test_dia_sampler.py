"""DiaSampler on its own: the draw is torch.multinomial's, and a row's draw depends on its
seed and its logits only, never on the batch around it (what holds on any device)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ttsframe.plugins.dia.sampling import DiaSampler  # noqa: E402

CHANNELS, VOCAB, EOS = 9, 1028, 1024


class NoDelay:
    """Stands in for transformers' delay-pattern processor (nothing forced)."""

    def __call__(self, input_ids, scores):
        return scores


def sampler(seeds, **kwargs):
    options = {"cfg_scale": 3.0, "top_k": 45, "temperature": 1.2, "top_p": 0.95, **kwargs}
    return DiaSampler(seeds=seeds, channels=CHANNELS, eos=EOS, delay=NoDelay(),
                      device="cpu", **options)


def scores_for(rows: list[int]) -> torch.Tensor:
    """CFG scores (conditional rows, then unconditional) for rows of given logit seeds."""
    def row(seed, shift):
        return torch.randn(CHANNELS, VOCAB, generator=torch.Generator().manual_seed(seed)) * (
            3 + shift)
    cond = torch.cat([row(r, 0) for r in rows])
    uncond = torch.cat([row(r + 1000, 1) for r in rows])
    return torch.cat([cond, uncond])


def tokens(processor, rows):
    ids = torch.zeros(len(rows) * CHANNELS, 1, dtype=torch.long)
    return processor(ids, scores_for(rows)).argmax(dim=-1).view(len(rows), CHANNELS)


def test_a_rows_draw_does_not_depend_on_its_batch():
    alone = tokens(sampler([7]), [1])[0]
    batched = tokens(sampler([3, 7, 9]), [5, 1, 6])
    assert torch.equal(batched[1], alone)
    assert not torch.equal(batched[0], batched[1])
    again = tokens(sampler([7, 3]), [1, 5])  # another place in the batch
    assert torch.equal(again[0], alone) and torch.equal(again[1], batched[0])


def test_the_draw_is_torch_multinomials():
    """One argmax over per-row exponential noise draws exactly what torch.multinomial
    draws from the same generator (its own one-sample path), so seeded takes match the
    reference, which samples with torch.multinomial."""
    processor = sampler([11, 12], top_k=None, top_p=None, temperature=1.0, cfg_scale=0.0)
    ours = tokens(processor, [2, 3])
    cond = scores_for([2, 3])[: 2 * CHANNELS].view(2, CHANNELS, VOCAB)
    cond[:, 1:, EOS:] = -torch.inf
    cond[:, 0, EOS + 1:] = -torch.inf
    best_is_eos = (cond.argmax(-1, keepdim=True) == EOS)
    index = torch.arange(VOCAB)
    cond = cond.masked_fill(best_is_eos & (index < EOS), -torch.inf)
    cond = cond.masked_fill(~best_is_eos & (index == EOS), -torch.inf)
    for row, seed in enumerate((11, 12)):
        drawn = torch.multinomial(cond[row].softmax(-1), 1,
                                  generator=torch.Generator().manual_seed(seed))
        assert torch.equal(ours[row], drawn[:, 0])


def test_greedy_is_the_argmax_of_the_filtered_conditional_logits():
    processor = sampler([0], temperature=None, top_p=None, top_k=3)
    (ours,) = tokens(processor, [4])
    scores = scores_for([4])
    cond, uncond = scores[:CHANNELS], scores[CHANNELS:]
    guided = cond + 3.0 * (cond - uncond)
    kept = guided.topk(3, dim=-1).indices
    want = kept.gather(-1, cond.gather(-1, kept).argmax(-1, keepdim=True))[:, 0]
    assert torch.equal(ours, want)
