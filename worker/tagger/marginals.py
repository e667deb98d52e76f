"""How sure the CRF is of an entity: the probability of its span, by forward-backward.

An entity's score is the CRF's marginal probability that the decoded tags of its words hold
exactly there and the entity neither starts earlier nor goes on (the tag before a span that opens
with a continuation tag does not open or continue one; the tag after a span that can go on is
not a continuation), summed over every tag path outside the span:

    P(span) = left(i) * exp(internal score of the span's tags) * right(j) / Z

where ``left`` sums the forward scores into the span's first tag, ``right`` the backward scores
out of its last, and ``Z`` all paths. The served score is that marginal through the artifact's
calibration map (:func:`calibrated`, fitted on the dev splits by ``worker.model.calibrate``), so
that of the entities scored about 0.9, about 90 % are right.

Forward and backward run in probability space, each step rescaled to sum 1 with the log of the
scale kept, so a 510-step window costs two short NumPy loops; everything is float64. They run
over a batch of windows at once (:func:`lattices`), a loop step per position instead of per
position of every window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import math

import numpy as np


@dataclass(frozen=True)
class Lattice:
    """Forward-backward of one sequence: rescaled tables and their log scales."""

    alpha: np.ndarray  # (T, N) forward, each row summing to 1
    log_alpha: np.ndarray  # (T,) log of what row t was divided by, accumulated (incl. emission offsets)
    beta: np.ndarray  # (T, N) backward, each row summing to 1
    log_beta: np.ndarray  # (T,)
    log_z: float
    em: np.ndarray  # (T, N) the (tempered) emissions
    trans: np.ndarray  # (N, N) the (tempered) transitions
    start: np.ndarray
    end: np.ndarray


def lattice(start: np.ndarray, end: np.ndarray, trans: np.ndarray, em: np.ndarray,
            temperature: float = 1.0) -> Lattice:
    """Forward-backward over emissions ``em`` (T, N) of one sequence (T >= 1): :func:`lattices`
    of a batch of one."""
    em = np.asarray(em)
    return lattices(start, end, trans, em[None], np.array([len(em)]), temperature)[0]


def lattices(start: np.ndarray, end: np.ndarray, trans: np.ndarray, em: np.ndarray, lengths: np.ndarray,
             temperature: float = 1.0) -> list[Lattice]:
    """Forward-backward of a batch: emissions ``em`` (B, T, N), row ``b`` real for its first
    ``lengths[b]`` (>= 1) steps (the rest is padding, never read).

    Each row's tables are a function of its own real steps only, bit for bit, whatever shares
    the batch or however much padding it has: every operation is elementwise or a reduction along
    one row's labels or steps in a fixed order, and a padded step's value is replaced, not mixed in.
    """
    t_inv = 1.0 / float(temperature)
    start = np.asarray(start, np.float64) * t_inv
    end = np.asarray(end, np.float64) * t_inv
    trans = np.asarray(trans, np.float64) * t_inv
    em = np.asarray(em, np.float64) * t_inv
    lengths = np.asarray(lengths, dtype=np.int64)
    bsz, steps, n = em.shape
    rows = np.arange(bsz)
    ends = lengths - 1
    top = em.max(axis=2)  # (B, T)
    e = np.exp(em - top[:, :, None])
    p_shift = float(trans.max())
    p = np.exp(trans - p_shift)
    # Each step of either pass is a vector-matrix product with p, an elementwise product with the
    # step's emissions, a sum and a scale; the logs of the scales are taken once at the end.
    alpha = np.empty((bsz, steps, n))
    a_scale = np.empty((bsz, steps))
    a = np.exp(start - start.max())[None] * e[:, 0]
    a_scale[:, 0] = s = a.sum(axis=1)
    alpha[:, 0] = a * (1.0 / s)[:, None]
    for t in range(1, steps):
        a = (alpha[:, t - 1, :, None] * p[None]).sum(axis=1) * e[:, t]
        a_scale[:, t] = s = a.sum(axis=1)
        np.multiply(a, (1.0 / s)[:, None], out=alpha[:, t])
    log_alpha = np.cumsum(np.log(a_scale) + top + p_shift, axis=1)
    log_alpha += start.max() - p_shift
    b_last = np.exp(end - end.max())
    s_last = b_last.sum()
    b_last = b_last * (1.0 / s_last)
    beta = np.empty((bsz, steps, n))
    b_scale = np.empty((bsz, steps))
    beta[:, -1] = b_last
    b_scale[:, -1] = s_last
    for t in range(steps - 2, -1, -1):
        b = (p[None] * (e[:, t + 1] * beta[:, t + 1])[:, None, :]).sum(axis=2)
        s = b.sum(axis=1)
        b *= (1.0 / s)[:, None]
        last = t >= ends  # a row's own last step (and its padding) starts its backward pass afresh
        beta[:, t] = np.where(last[:, None], b_last, b)
        b_scale[:, t] = np.where(last, s_last, s)
    # log_beta[t] = sum over a row's steps k >= t of log b_scale[k], plus each later step's top
    # and p_shift; padding adds exact zeros ahead of the sum.
    t_idx = np.arange(steps)[None]
    steps_after = np.log(b_scale)
    steps_after[:, :-1] += np.where(t_idx[:, :-1] < ends[:, None], top[:, 1:] + p_shift, 0.0)
    steps_after[t_idx > ends[:, None]] = 0.0
    log_beta = np.cumsum(steps_after[:, ::-1], axis=1)[:, ::-1] + end.max()
    w_end = np.exp(end - end.max())
    log_z = log_alpha[rows, ends] + np.log((alpha[rows, ends] * w_end[None]).sum(axis=1)) + end.max()
    return [Lattice(alpha[b, :k], log_alpha[b, :k], beta[b, :k], log_beta[b, :k], float(log_z[b]), em[b, :k],
                    trans, start, end) for b, k in enumerate(lengths.tolist())]


def span_probability(lat: Lattice, i: int, tags: Sequence[int], *, not_before: Sequence[int] = (),
                     not_after: Sequence[int] = ()) -> float:
    """P(tags at positions i .. i+len(tags)-1, the tag at i-1 not in ``not_before``, the tag at
    i+len(tags) not in ``not_after``) under the lattice's CRF."""
    j = i + len(tags)
    steps, n = lat.em.shape
    tags_a = np.asarray(tags)
    inner = float(lat.em[np.arange(i, j), tags_a].sum() + lat.trans[tags_a[:-1], tags_a[1:]].sum())
    if i == 0:
        left = float(lat.start[tags_a[0]])
    else:
        keep = np.ones(n, bool)
        keep[list(not_before)] = False
        w = lat.alpha[i - 1][keep] @ np.exp(lat.trans[keep, tags_a[0]] - lat.trans.max())
        left = float(lat.log_alpha[i - 1] + np.log(w) + lat.trans.max()) if w > 0 else -np.inf
    last = int(tags_a[-1])
    if j == steps:
        right = float(lat.end[last])
    else:
        keep = np.ones(n, bool)
        keep[list(not_after)] = False
        top = lat.em[j].max()
        w = (np.exp(lat.trans[last, keep] - lat.trans.max()) * np.exp(lat.em[j, keep] - top)) @ lat.beta[j][keep]
        right = float(lat.log_beta[j] + np.log(w) + lat.trans.max() + top) if w > 0 else -np.inf
    return float(np.exp(min(0.0, left + inner + right - lat.log_z)))


@dataclass(frozen=True)
class Boundaries:
    """Which tags continue an open entity, for the constraints of :func:`span_probability`."""

    opens: frozenset[int]  # B-*, S-*: a span starting with one cannot have started earlier
    closes: frozenset[int]  # E-*, S-*: a span ending with one cannot go on
    continuing: tuple[int, ...]  # I-*, E-*: a tag that would extend the span before it
    open_after: tuple[int, ...]  # B-*, I-*: a tag after which a continuation extends an entity

    @classmethod
    def of(cls, labels: Sequence[str]) -> Boundaries:
        """From label strings (BIO or BIOES)."""
        kind = [lab[:1] for lab in labels]
        return cls(frozenset(i for i, k in enumerate(kind) if k in "BS"),
                   frozenset(i for i, k in enumerate(kind) if k in "ES"),
                   tuple(i for i, k in enumerate(kind) if k in "IE"),
                   tuple(i for i, k in enumerate(kind) if k in "BI"))


def entity_probability(lat: Lattice, i: int, tags: Sequence[int], bounds: Boundaries) -> float:
    """The probability of the entity whose words are ``i .. i+len(tags)-1`` with these decoded tags."""
    return span_probability(lat, i, tags,
                            not_before=() if tags[0] in bounds.opens else bounds.open_after,
                            not_after=() if tags[-1] in bounds.closes else bounds.continuing)


def entity_probabilities(lat: Lattice, path: np.ndarray, spans: Sequence[tuple[int, int]],
                         bounds: Boundaries) -> list[float]:
    """:func:`entity_probability` of every ``(i, j)`` span of the decoded ``path``, at once: the
    sums every span needs are taken for the whole window in a few array operations."""
    if not spans:
        return []
    steps, n = lat.em.shape
    path = np.asarray(path)
    tmax = float(lat.trans.max())
    p = np.exp(lat.trans - tmax)
    # Score of the decoded path step by step (emission, plus the transition into it), as prefix sums.
    step = lat.em[np.arange(steps), path]
    step[1:] += lat.trans[path[:-1], path[1:]]
    prefix = np.concatenate([[0.0], np.cumsum(step)])
    log_alpha_true = np.log(np.maximum(lat.alpha[np.arange(steps), path], 1e-300)) + lat.log_alpha
    # Into position i from an allowed tag at i-1 (a span opening with a continuation tag), and out
    # of position j-1 into an allowed tag at j (a span that could go on).
    before = np.ones(n)
    before[list(bounds.open_after)] = 0.0
    after = np.ones(n)
    after[list(bounds.continuing)] = 0.0
    top = lat.em.max(axis=1)
    into = (lat.alpha[:-1] * before) @ p if steps > 1 else np.zeros((0, n))
    out_of = (np.exp(lat.em[1:] - top[1:, None]) * lat.beta[1:] * after) @ p.T if steps > 1 else np.zeros((0, n))
    probs = []
    for i, j in spans:
        first, last = int(path[i]), int(path[j - 1])
        if i == 0 or first in bounds.opens:
            left = log_alpha_true[i]
        else:
            left = np.log(max(into[i - 1, first], 1e-300)) + lat.log_alpha[i - 1] + tmax + lat.em[i, first]
        inner = prefix[j] - prefix[i + 1]
        if j == steps:
            right = lat.end[last]
        elif last in bounds.closes:
            right = np.log(max(lat.beta[j - 1, last], 1e-300)) + lat.log_beta[j - 1]
        else:
            right = np.log(max(out_of[j - 1, last], 1e-300)) + lat.log_beta[j] + tmax + top[j]
        probs.append(float(np.exp(min(0.0, left + inner + right - lat.log_z))))
    return probs


#: Marginals are clipped to [eps, 1 - eps] before their logit: a float64 marginal rounds to 1.0
#: long before its logit stops meaning anything.
LOGIT_EPS = 1e-6


def calibrated(probs: Sequence[float], platt: tuple[float, float]) -> list[float]:
    """Span marginals through the Platt map ``sigmoid(a * logit(p) + b)`` (monotone for a > 0)."""
    a, b = platt
    out = []
    for p in probs:
        p = min(max(p, LOGIT_EPS), 1.0 - LOGIT_EPS)
        out.append(1.0 / (1.0 + math.exp(-(a * math.log(p / (1.0 - p)) + b))))
    return out
