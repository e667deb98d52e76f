"""Batched CRF Viterbi decoding.

``torchcrf.CRF.decode`` runs the forward max-product over the batch but then
backtracks sequence by sequence in Python and returns lists; this keeps both
passes as array ops over the whole batch. The arrays are tiny (batch x labels x
labels per step), so the loop runs in NumPy: a NumPy op costs ~1 µs against
~10 µs for a torch op (dispatch, and a thread-pool hand-off on a busy machine).
Paths are checked against torchcrf's in the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def viterbi_numpy(
    start: np.ndarray,
    end: np.ndarray,
    trans: np.ndarray,
    emissions: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """Best tag path per sequence.

    Args:
        start: (N,) start transition scores.
        end: (N,) end transition scores.
        trans: (N, N) scores from tag ``i`` to tag ``j``.
        emissions: (B, T, N) float emissions.
        lengths: (B,) ints >= 1, the real steps of each sequence.

    Returns:
        (B, T) int64 tag ids; positions past a sequence's length are 0.
    """
    bsz, steps, n = emissions.shape
    rows = np.arange(bsz)
    score = start[None] + emissions[:, 0]
    history = np.zeros((max(steps - 1, 0), bsz, n), dtype=np.int64)
    for t in range(1, steps):
        cand = score[:, :, None] + trans[None]  # (B, from, to)
        idx = cand.argmax(axis=1)
        history[t - 1] = idx
        best = np.take_along_axis(cand, idx[:, None, :], axis=1)[:, 0]
        live = (t < lengths)[:, None]
        score = np.where(live, best + emissions[:, t], score)
    last = (score + end[None]).argmax(axis=1)
    tags = np.zeros((bsz, steps), dtype=np.int64)
    cur = last
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            prev = history[t, rows, cur]  # best tag at t given the tag at t+1
            cur = np.where(t < lengths - 1, prev, cur)
        cur = np.where(t == lengths - 1, last, cur)
        tags[:, t] = np.where(t < lengths, cur, 0)
    return tags


def viterbi(crf: Any, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best tag path per sequence (torch in and out).

    Args:
        crf: anything with torchcrf's ``start_transitions``/``end_transitions``/``transitions``.
        emissions: (B, T, N) float emissions.
        mask: (B, T) bool, a contiguous prefix of True per sequence, first step True.

    Returns:
        (B, T) long tensor of tag ids; positions past a sequence's length are 0.
    """
    params = [p.detach().float().numpy() for p in (crf.start_transitions, crf.end_transitions, crf.transitions)]
    lengths = mask.sum(1).numpy()
    return torch.from_numpy(viterbi_numpy(*params, emissions.detach().float().numpy(), lengths))
