"""Batched CRF Viterbi decoding.

``torchcrf.CRF.decode`` runs the forward max-product over the batch but then
backtracks sequence by sequence in Python and returns lists; this keeps both
passes as tensor ops over the whole batch. Paths are checked against torchcrf's
in the tests.
"""

from __future__ import annotations

import torch
from torchcrf import CRF


def viterbi(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best tag path per sequence.

    Args:
        crf: a ``torchcrf.CRF`` whose transition parameters are used.
        emissions: (B, T, N) float emissions.
        mask: (B, T) bool, a contiguous prefix of True per sequence, first step True.

    Returns:
        (B, T) long tensor of tag ids; positions past a sequence's length are 0.
    """
    bsz, steps, _ = emissions.shape
    lengths = mask.sum(1)
    trans = crf.transitions.unsqueeze(0)  # (1, from, to)
    score = crf.start_transitions + emissions[:, 0]
    history = []
    for t in range(1, steps):
        cand = score.unsqueeze(2) + trans  # (B, from, to)
        best, idx = cand.max(dim=1)
        history.append(idx)
        score = torch.where(mask[:, t : t + 1], best + emissions[:, t], score)
    score = score + crf.end_transitions
    last = score.argmax(dim=1)
    tags = torch.zeros(bsz, steps, dtype=torch.long)
    cur = last
    zero = torch.zeros_like(last)
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            prev = history[t].gather(1, cur.unsqueeze(1)).squeeze(1)  # best tag at t given tag at t+1
            cur = torch.where(t < lengths - 1, prev, cur)
        cur = torch.where(t == lengths - 1, last, cur)
        tags[:, t] = torch.where(t < lengths, cur, zero)
    return tags
