"""Batched Viterbi gives exactly torchcrf's paths."""

from __future__ import annotations

import torch
from torchcrf import CRF

from worker.tagger.viterbi import viterbi_numpy


def viterbi(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """viterbi_numpy with torchcrf's parameters and torch tensors in and out."""
    params = [p.detach().float().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions)]
    lengths = mask.sum(1).numpy()
    return torch.from_numpy(viterbi_numpy(*params, emissions.detach().float().numpy(), lengths))


def test_paths_identical_to_torchcrf_decode() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(200):
        n = int(torch.randint(2, 14, (1,), generator=gen))
        bsz = int(torch.randint(1, 5, (1,), generator=gen))
        steps = int(torch.randint(1, 30, (1,), generator=gen))
        crf = CRF(n, batch_first=True)
        with torch.no_grad():
            for p in crf.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        em = torch.randn(bsz, steps, n, generator=gen) * 2
        lengths = torch.randint(1, steps + 1, (bsz,), generator=gen)
        mask = torch.arange(steps)[None] < lengths[:, None]
        ours = viterbi(crf, em, mask)
        ref = crf.decode(em, mask=mask)
        for b in range(bsz):
            assert ours[b, : lengths[b]].tolist() == ref[b], trial
            assert ours[b, lengths[b] :].eq(0).all()
