"""Accuracy and speed of a model on a BIO file, through the production Tagger (windows + merge)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from worker.model.bio import read_bio
from worker.model.calibrate import calibration
from worker.model.scoring import bio_spans, score
from worker.tagger.tagger import Tagger


def evaluate(tagger: Tagger, data: str | Path, *, limit: int | None = None,
             _scored: tuple[list[float], list[bool]] | None = None) -> dict:
    """Exact-match entity scores of ``tagger`` on a BIO/BIOES file.

    Args:
        tagger: the tagger to measure (the same class workers run).
        data: path to a ``CHAR<TAB>TAG`` file.
        limit: only the first ``limit`` sentences.

    Returns:
        ``{precision, recall, f1, per_type: {T: {precision, recall, f1, support}}, calibration,
        sentences, chars, seconds, chars_per_second}``; ``seconds`` is tagging time only;
        ``calibration`` is :func:`worker.model.calibrate.calibration` of the predicted entities'
        scores (ECE over 10 bins, precision and coverage at 0.5 and 0.9).
    """
    sents = list(islice(read_bio(data), limit))
    return evaluate_texts(tagger, [s.text for s in sents], [bio_spans(s.tags) for s in sents], _scored=_scored)


def evaluate_texts(tagger: Tagger, texts: Sequence[str], gold: Sequence[set[tuple[int, int, str]]], *,
                   _scored: tuple[list[float], list[bool]] | None = None) -> dict:
    """:func:`evaluate` on documents given as texts and their gold entities ``(start, end, label)``
    (e.g. a job's corrections, ``shiti model evaluate --job``)."""
    start = time.perf_counter()
    found = tagger.annotate(list(texts))
    seconds = time.perf_counter() - start
    pred = [{(e.start, e.end, e.label) for e in ents} for ents in found]
    result = score(gold, pred)
    scored = [(e.score, (e.start, e.end, e.label) in g) for ents, g in zip(found, gold) for e in ents]
    result["calibration"] = calibration([s for s, _ in scored], [r for _, r in scored])
    if _scored is not None:  # evaluate_files pools every file's entities
        _scored[0].extend(s for s, _ in scored)
        _scored[1].extend(r for _, r in scored)
    chars = sum(len(t) for t in texts)
    result.update(
        sentences=len(texts),
        chars=chars,
        seconds=round(seconds, 3),
        chars_per_second=round(chars / seconds, 1) if seconds > 0 else 0.0,
    )
    return result


@dataclass(frozen=True)
class GoldTexts:
    """Documents and their gold entities held in memory (a job's corrections), scored like a file."""

    name: str
    texts: list[str]
    gold: list[set[tuple[int, int, str]]]


def evaluate_files(tagger: Tagger, files: Sequence[str | Path | GoldTexts], *, limit: int | None = None) -> dict:
    """:func:`evaluate` on every file, plus the macro averages of precision, recall and F1.

    Returns:
        ``{"files": {path: result}, "macro_precision", "macro_recall", "macro_f1", "calibration"}``
        (calibration of every file's entities pooled).

    Raises:
        ValueError: a file has a malformed line (named with file and line), or no entities.
    """
    results = {}
    everything: tuple[list[float], list[bool]] = ([], [])
    for path in files:
        if isinstance(path, GoldTexts):
            res = evaluate_texts(tagger, path.texts[:limit], path.gold[:limit], _scored=everything)
        else:
            res = evaluate(tagger, path, limit=limit, _scored=everything)
        name = path.name if isinstance(path, GoldTexts) else str(path)
        if not sum(row["support"] for row in res["per_type"].values()):
            raise ValueError(f"{name}: no gold entities to score against")
        results[name] = res
    pooled = calibration(*everything)
    n = len(results)
    return {"files": results, **{f"macro_{k}": sum(r[k] for r in results.values()) / n
                                 for k in ("precision", "recall", "f1")},
            "calibration": pooled}
