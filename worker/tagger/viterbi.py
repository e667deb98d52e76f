"""Batched CRF Viterbi decoding.

``torchcrf.CRF.decode`` runs the forward max-product over the batch but then
backtracks sequence by sequence in Python and returns lists; this keeps both
passes as array ops over the whole batch. The arrays are tiny (batch x labels x
labels per step), so the loop runs in NumPy: a NumPy op costs ~1 µs against
~10 µs for a torch op (dispatch, and a thread-pool hand-off on a busy machine).
No torch here (serving imports this); paths are checked against torchcrf's in the tests.
"""

from __future__ import annotations

import numpy as np


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
    # Every row runs all steps, padding included: the score at a row's last real step only
    # depends on its real steps, so it is read off afterwards instead of masking each step.
    scores = np.empty((steps, bsz, n), dtype=np.result_type(start, trans, emissions))
    scores[0] = start[None] + emissions[:, 0]
    history = np.empty((max(steps - 1, 0), bsz, n), dtype=np.int64)
    for t in range(1, steps):
        cand = scores[t - 1][:, :, None] + trans[None]  # (B, from, to)
        cand.argmax(axis=1, out=history[t - 1])
        cand.max(axis=1, out=scores[t])
        scores[t] += emissions[:, t]
    score = scores[lengths - 1, rows]
    last = (score + end[None]).argmax(axis=1)
    tags = np.empty((bsz, steps), dtype=np.int64)
    tags[:, steps - 1] = cur = last
    ends = lengths - 1
    for t in range(steps - 2, -1, -1):
        # At and past a row's last step its tag is ``last``; before it, follow the back-pointers.
        cur = np.where(t >= ends, last, history[t, rows, cur])
        tags[:, t] = cur
    tags[np.arange(steps)[None] > ends[:, None]] = 0
    return tags
