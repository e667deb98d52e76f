"""Entity-level exact-match scoring (same sentence, start, end, type). Pure code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

Gold = tuple[int, int, str]  # (start, end, type)


def bio_spans(tags: Iterable[str]) -> set[Gold]:
    """Gold spans from per-character BIO or BIOES tags (strict: a type change closes)."""
    spans: set[Gold] = set()
    start, typ = -1, ""
    tags = list(tags)
    for i, tag in enumerate([*tags, "O"]):
        kind, label = tag[:1], tag[2:]
        continues = kind in ("I", "E") and typ == label and start >= 0
        if not continues and start >= 0:
            spans.add((start, i, typ))
            start, typ = -1, ""
        if kind in ("B", "S") or (kind in ("I", "E") and start < 0):
            start, typ = i, label
        if kind in ("E", "S") and start >= 0:
            spans.add((start, i + 1, typ))
            start, typ = -1, ""
    return spans


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(gold: list[set[Gold]], pred: list[set[Gold]]) -> dict:
    """Micro precision/recall/F1 and per-type figures over aligned sentences.

    Returns:
        ``{"precision", "recall", "f1", "per_type": {T: {precision, recall, f1, support}}}``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences vs {len(pred)} predicted")
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for g, p in zip(gold, pred):
        for s in g:
            n_gold[s[2]] += 1
        for s in p:
            n_pred[s[2]] += 1
        for s in g & p:
            tp[s[2]] += 1
    per_type = {}
    for typ in sorted(set(n_gold) | set(n_pred)):
        p_, r_, f_ = _prf(tp[typ], n_pred[typ], n_gold[typ])
        per_type[typ] = {"precision": p_, "recall": r_, "f1": f_, "support": n_gold[typ]}
    p, r, f = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return {"precision": p, "recall": r, "f1": f, "per_type": per_type}
