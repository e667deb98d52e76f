"""Span marginals (worker/tagger/marginals.py) equal brute-force sums over every tag path, at any
temperature and however large the scores; they sum to at most one over disjoint events."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.tagger.marginals import (Boundaries, entity_probabilities, entity_probability, lattice, lattices,
                                     span_probability)
from worker.tagger.viterbi import viterbi_numpy

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _brute(start, end, trans, em, temperature, i, tags, not_before, not_after) -> float:  # type: ignore[no-untyped-def]
    steps, n = em.shape
    scores, hits = [], []
    for path in itertools.product(range(n), repeat=steps):
        s = start[path[0]] + end[path[-1]] + sum(em[t, y] for t, y in enumerate(path))
        s += sum(trans[a, b] for a, b in zip(path, path[1:]))
        scores.append(s / temperature)
        j = i + len(tags)
        hits.append(tuple(path[i:j]) == tuple(tags) and (i == 0 or path[i - 1] not in not_before)
                    and (j == steps or path[j] not in not_after))
    scores_a = np.array(scores)
    w = np.exp(scores_a - scores_a.max())
    return float(w[np.array(hits)].sum() / w.sum())


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 5), st.floats(0.3, 4.0), st.floats(0.5, 40.0), st.data())
def test_span_probability_equals_the_brute_force_sum(steps: int, temperature: float, scale: float,
                                                     data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    n = len(LABELS)
    start, end = rng.normal(size=n) * scale, rng.normal(size=n) * scale
    trans, em = rng.normal(size=(n, n)) * scale, rng.normal(size=(steps, n)) * scale
    i = data.draw(st.integers(0, steps - 1))
    length = data.draw(st.integers(1, steps - i))
    tags = [data.draw(st.integers(0, n - 1)) for _ in range(length)]
    not_before = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=3))
    not_after = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=3))
    lat = lattice(start, end, trans, em, temperature)
    got = span_probability(lat, i, tags, not_before=not_before, not_after=not_after)
    want = _brute(start, end, trans, em, temperature, i, tags, set(not_before), set(not_after))
    assert abs(got - want) < 1e-9 + 1e-7 * want, (got, want)


def test_entity_probability_uses_bio_boundaries_and_a_confident_crf_scores_near_one() -> None:
    bounds = Boundaries.of(LABELS)
    assert bounds.opens == {1, 3} and bounds.continuing == (2, 4) and bounds.open_after == (1, 2, 3, 4)
    n = len(LABELS)
    em = np.full((4, n), -5.0)
    for t, y in enumerate([0, 1, 2, 0]):  # O B-PER I-PER O, strongly
        em[t, y] = 5.0
    zeros = np.zeros(n)
    lat = lattice(zeros, zeros, np.zeros((n, n)), em)
    p = entity_probability(lat, 1, [1, 2], bounds)
    assert 0.99 < p <= 1.0
    # Colder (higher temperature) is less sure; the span and its one-shorter rival share the mass
    hot = entity_probability(lattice(zeros, zeros, np.zeros((n, n)), em, 4.0), 1, [1, 2], bounds)
    short = entity_probability(lattice(zeros, zeros, np.zeros((n, n)), em, 4.0), 1, [1], bounds)
    assert hot < p and hot + short <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.floats(0.3, 4.0), st.sampled_from([LABELS, ["O", "B-X", "I-X", "E-X", "S-X"]]),
       st.data())
def test_all_spans_at_once_equal_one_at_a_time(steps: int, temperature: float, labels: list[str],
                                               data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    n = len(labels)
    start, end, trans = rng.normal(size=n) * 3, rng.normal(size=n) * 3, rng.normal(size=(n, n)) * 3
    em = rng.normal(size=(steps, n)) * 6
    path = rng.integers(0, n, size=steps)
    spans = []
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, steps - 1))
        spans.append((i, data.draw(st.integers(i + 1, steps))))
    bounds = Boundaries.of(labels)
    lat = lattice(start, end, trans, em, temperature)
    got = entity_probabilities(lat, path, spans, bounds)
    want = [entity_probability(lat, i, path[i:j].tolist(), bounds) for i, j in spans]
    assert np.allclose(got, want, rtol=1e-7, atol=1e-12), (got, want)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=9), st.floats(0.3, 4.0), st.data())
def test_a_window_decoded_in_any_batch_gets_the_same_tables_and_path_bit_for_bit(
        lengths: list[int], temperature: float, data: st.DataObject) -> None:
    # Given windows of mixed lengths padded into one batch (padding filled with noise, not zeros)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    n = len(LABELS)
    start, end, trans = (rng.normal(size=n) * 3).astype(np.float32), (rng.normal(size=n) * 3).astype(np.float32), \
        (rng.normal(size=(n, n)) * 3).astype(np.float32)
    lens = np.array(lengths)
    ems = (rng.normal(size=(len(lens), int(lens.max()) + data.draw(st.integers(0, 5)), n)) * 6).astype(np.float32)
    # When the whole batch is decoded at once, and each window alone, unpadded
    together = lattices(start, end, trans, ems, lens, temperature)
    paths = viterbi_numpy(start, end, trans, ems, lens)
    for b, k in enumerate(lengths):
        alone = lattices(start, end, trans, ems[b : b + 1, :k], lens[b : b + 1], temperature)[0]
        # Then its tables, Z and best path are the same bits: its batch-mates and padding do not reach it
        for name in ("alpha", "log_alpha", "beta", "log_beta", "em"):
            assert np.array_equal(getattr(together[b], name), getattr(alone, name)), name
        assert together[b].log_z == alone.log_z
        assert np.array_equal(paths[b, :k], viterbi_numpy(start, end, trans, ems[b : b + 1, :k], lens[b : b + 1])[0])
        # And the tables are a forward-backward: Z from the backward pass equals Z from the forward one
        z_back = alone.log_beta[0] + np.log((np.exp(alone.start - alone.start.max()) *
                                             np.exp(alone.em[0] - alone.em[0].max()) * alone.beta[0]).sum()) \
            + alone.start.max() + alone.em[0].max()
        assert np.isclose(z_back, alone.log_z, rtol=1e-9, atol=1e-9)
