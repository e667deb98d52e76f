"""Merge: window spans -> sorted, disjoint document spans, best copy kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.tagger.merge import Found, merge_windows
from worker.tagger.windows import Window, make_windows


@st.composite
def window_results(draw):
    n = draw(st.integers(1, 300))
    windows = make_windows("x" * n, max_tokens=draw(st.integers(5, 60)), overlap=draw(st.integers(0, 20)))
    results = []
    for w in windows:
        spans = []
        for _ in range(draw(st.integers(0, 6))):
            s = draw(st.integers(w.start, w.end - 1))
            e = draw(st.integers(s + 1, w.end))
            spans.append(Found(s, e, draw(st.sampled_from(["PER", "LOC", "ORG"])), draw(st.floats(0, 1))))
        results.append((w, spans))
    return n, results


@settings(max_examples=300, deadline=None)
@given(data=window_results())
def test_merged_sorted_disjoint_subset_and_idempotent(data) -> None:
    n, results = data
    merged = merge_windows(results, doc_len=n)
    assert merged == sorted(merged, key=lambda f: (f.start, f.end))
    assert all(a.end <= b.start for a, b in zip(merged, merged[1:]))
    inputs = {s for _, spans in results for s in spans}
    assert set(merged) <= inputs
    assert merge_windows([(Window(0, n), merged)], doc_len=n) == merged
    # every input span is either kept or overlaps a kept one (nothing dropped for no reason)
    assert all(any(k.start < s.end and s.start < k.end for k in merged) for s in inputs)


def test_entity_seen_twice_kept_once_from_window_farthest_from_edge() -> None:
    # Given windows [0,100) and [80,180) that both see an entity at 90..95
    a, b = Window(0, 100), Window(80, 180)
    near_edge = Found(90, 95, "PER", 0.99)  # 5 chars from a's right edge
    inside = Found(90, 95, "PER", 0.60)  # 10 chars from b's left edge
    merged = merge_windows([(a, [near_edge]), (b, [inside])], doc_len=180)
    assert merged == [inside]


def test_clipped_copy_at_edge_loses_to_whole_entity() -> None:
    a, b = Window(0, 100), Window(80, 180)
    clipped = Found(97, 100, "ORG", 0.99)  # touches a's cut
    whole = Found(97, 103, "ORG", 0.50)
    assert merge_windows([(a, [clipped]), (b, [whole])], doc_len=180) == [whole]


def test_document_edges_are_not_cuts() -> None:
    a, b = Window(0, 100), Window(80, 180)
    at_start = Found(0, 3, "LOC", 0.9)
    assert merge_windows([(a, [at_start]), (b, [])], doc_len=180) == [at_start]
    # the last window's right edge is the document end, so an entity there counts as deep inside
    mid, last = Window(80, 160), Window(140, 180)
    clipped, tail = Found(155, 160, "LOC", 0.9), Found(155, 162, "LOC", 0.1)
    assert merge_windows([(mid, [clipped]), (last, [tail])], doc_len=180) == [tail]
