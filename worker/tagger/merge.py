"""Window spans -> one entity list in document offsets. Pure code."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from worker.tagger.windows import Window


@dataclass(frozen=True, order=True)
class Found:
    """An entity in document coordinates: ``[start, end)`` code points."""

    start: int
    end: int
    label: str
    score: float


def merge_windows(
    results: Sequence[tuple[Window, Sequence[Found]]],
    *,
    doc_len: int | None = None,
) -> list[Found]:
    """Merge per-window entities into one sorted, non-overlapping list.

    Policy (the only place it is written down):

    1. Each window's spans are shifted to document offsets (``start + window.start``).
    2. Every candidate gets an *edge distance*: the number of characters between it
       and the nearer edge of its window, ``min(start - w.start, w.end - end)``. An edge
       that is also the document's edge (0 or ``doc_len``) is not a cut and counts
       as infinitely far, so the first and last windows are trusted at the ends.
    3. Candidates are ranked by edge distance (larger first), then score (higher
       first), then position, and accepted greedily: a candidate is kept unless it
       overlaps one already kept. So an entity seen by two windows is kept once,
       from the window where it lies farthest from an edge, and a clipped copy at a
       window edge loses to the whole entity from a window where it sits inside.
    4. The kept entities are returned sorted by ``(start, end)``.

    The output is sorted, pairwise disjoint and a subset of the (shifted) inputs,
    and merging it again as a single window gives it back unchanged.

    Args:
        results: ``(window, spans)`` pairs; spans are in *document* offsets.
        doc_len: document length; defaults to the furthest window end.
    """
    if doc_len is None:
        doc_len = max((w.end for w, _ in results), default=0)
    inf = float("inf")
    ranked: list[tuple[float, float, int, int, str, Found]] = []
    for window, spans in results:
        left_far = window.start == 0
        right_far = window.end >= doc_len
        for span in spans:
            left = inf if left_far else span.start - window.start
            right = inf if right_far else window.end - span.end
            ranked.append((-min(left, right), -span.score, span.start, span.end, span.label, span))
    ranked.sort(key=lambda r: r[:5])
    # Kept spans are disjoint, so sorted by start they are sorted by end too: only the
    # nearest kept span starting before a candidate's end can overlap it.
    starts: list[int] = []
    kept: list[Found] = []
    for *_, span in ranked:
        i = bisect_left(starts, span.end)
        if i and kept[i - 1].end > span.start:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return kept
