"""Per-word tags -> entity spans, exactly as ModelScope's ``_chunk_process`` (docs/raner_format.md §5).

Pure code. Accepts BIO and BIOES (dispatch on the first letter of the label; the
type is ``label[2:]``). Quirks kept on purpose for parity with modelscope: an
``O`` does not close an open entity, and continuation tags are not type-checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """An entity in window coordinates: [start, end) code points, score of its opening word."""

    label: str
    start: int
    end: int
    score: float


def tags_to_spans(
    labels: Sequence[str],
    word_spans: Sequence[tuple[int, int]],
    scores: Sequence[float] | None = None,
) -> list[Span]:
    """Chunk one tag per word into entity spans.

    Args:
        labels: predicted label strings, one per word.
        word_spans: (start, end) char offsets of each word.
        scores: probability of each word's chosen tag (defaults to 1.0).
    """
    out: list[Span] = []
    cur: list | None = None  # [label, start, end, score]
    for i, lab in enumerate(labels):
        kind = lab[:1]
        start, end = word_spans[i]
        score = 1.0 if scores is None else float(scores[i])
        if kind in ("B", "S"):
            if cur is not None:
                out.append(Span(*cur))
            cur = [lab[2:], start, end, score]
        if kind in ("I", "E") and cur is None:
            cur = [lab[2:], start, end, score]
        if kind in ("I", "E", "S") and cur is not None:
            cur[2] = end
        if kind in ("E", "S") and cur is not None:
            out.append(Span(*cur))
            cur = None
    if cur is not None:
        out.append(Span(*cur))
    return out
