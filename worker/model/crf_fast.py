"""Vectorized CRF negative log-likelihood for training.

pytorch-crf's forward algorithm is already batched but runs ~10 small ops per
time step in Python; with a 6-layer 384-wide encoder that loop was a visible
share of the step. This version does the same maths with one logsumexp per step
and gathers the gold score in one shot. It is checked against
``torchcrf.CRF.forward`` in the tests.
"""

from __future__ import annotations

import torch
from torchcrf import CRF


def crf_nll(crf: CRF, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sequence negative log-likelihood, shape (B,).

    Args:
        crf: a ``torchcrf.CRF`` (batch_first) whose parameters are used.
        emissions: (B, T, N) float emissions.
        tags: (B, T) gold tag ids (any value at masked positions).
        mask: (B, T) bool, contiguous prefix of True per sequence, first step True.
    """
    bsz, steps, _ = emissions.shape
    maskf = mask.to(emissions.dtype)
    tags = tags.masked_fill(~mask, 0)
    trans = crf.transitions
    # Gold path score.
    emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
    score = crf.start_transitions[tags[:, 0]] + (emit * maskf).sum(1)
    if steps > 1:
        pair = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + (pair * maskf[:, 1:]).sum(1)
    lengths = mask.sum(1)
    last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    score = score + crf.end_transitions[last]
    # Partition function (forward algorithm).
    alpha = crf.start_transitions + emissions[:, 0]  # (B, N)
    for t in range(1, steps):
        nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
        alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
    log_z = torch.logsumexp(alpha + crf.end_transitions, dim=1)
    return log_z - score
