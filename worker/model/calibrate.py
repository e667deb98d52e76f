"""Calibrated entity scores: fit the map from the CRF's span marginal to the probability that the
entity is right on dev files, and measure calibration (expected calibration error, precision and
coverage at a threshold).

An entity's raw score is the CRF's probability of its span (``worker.tagger.marginals``). A CRF is
over-confident on text unlike its training text, and how much depends on the domain, so one
monotone map is fitted across domains: Platt scaling, ``sigmoid(a * logit(p) + b)``, by weighted
logistic regression in which **every dev file weighs the same** (the news files hold most of the
entities, but a user's corpus may be social media or CVs). The two numbers go into the artifact's
``crf.json`` (so they are part of the model's content hash) and every tagger loading the artifact
applies them; the order of scores never changes.

Torch-free: it runs on the ONNX artifact workers serve.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.model.bio import read_bio
from worker.model.scoring import bio_spans
from worker.tagger.marginals import LOGIT_EPS, calibrated, entity_probabilities, lattice
from worker.tagger.onnx_model import sha256_file
from worker.tagger.spans import tags_to_spans
from worker.tagger.tagger import Tagger
from worker.tagger.viterbi import viterbi_numpy

BINS = 10
THRESHOLDS = (0.5, 0.9)


def calibration(scores: Sequence[float], right: Sequence[bool], *, bins: int = BINS) -> dict:
    """Expected calibration error over ``bins`` equal-width bins, and precision / coverage (the
    share of entities scored at least t) at each of :data:`THRESHOLDS`, with the reliability table.

    Returns:
        ``{"entities", "ece", "at_0.5": {"precision", "coverage"}, "at_0.9": ..., "bins": [...]}``.
    """
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(right, dtype=np.float64)
    n = len(s)
    out: dict = {"entities": n}
    if not n:
        return out | {"ece": None, "bins": []}
    which = np.minimum((s * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        m = which == b
        if m.any():
            conf, acc = float(s[m].mean()), float(r[m].mean())
            ece += m.sum() / n * abs(conf - acc)
            table.append({"from": b / bins, "to": (b + 1) / bins, "entities": int(m.sum()),
                          "mean_score": round(conf, 4), "right": round(acc, 4)})
    out["ece"] = round(float(ece), 4)
    for t in THRESHOLDS:
        m = s >= t
        out[f"at_{t}"] = {"precision": round(float(r[m].mean()), 4) if m.any() else None,
                          "coverage": round(float(m.mean()), 4)}
    out["bins"] = table
    return out


@dataclass
class _Window:
    em: np.ndarray
    path: np.ndarray
    spans: list[tuple[int, int]]
    right: list[bool]
    source: str  # the dev file it came from (files weigh the same in the fit)


def collect(tagger: Tagger, files: Iterable[str | Path], *, take: slice = slice(None)) -> list[_Window]:
    """The windows of the files' sentences (those one window holds; char-mode models), with each
    predicted entity and whether the gold file has it (span and type)."""
    if tagger._chars is None:
        raise ValueError("calibration needs a char-mode model")
    out = []
    for path in files:
        for sent in list(read_bio(path))[take]:
            items = tagger._items(0, sent.text) if sent.text.strip() else []
            if len(items) != 1 or items[0].word_index is not None:
                continue
            em = tagger.engine.token_emissions(items[0].ids)[1:-1]
            best = viterbi_numpy(*tagger._crf, em[None], np.array([len(em)]))[0]
            pos = np.flatnonzero(best != tagger._o_id)
            spans = tags_to_spans([tagger.labels[t] for t in best[pos].tolist()],
                                  [(i, i + 1) for i in pos.tolist()]) if len(pos) else []
            gold = bio_spans(sent.tags)
            out.append(_Window(em.astype(np.float32), best, [(s.start, s.end) for s in spans],
                               [(s.start, s.end, s.label) in gold for s in spans], str(path)))
    return out


def raw_scores(tagger: Tagger, windows: Sequence[_Window]) -> tuple[list[float], list[bool], list[str]]:
    """Every collected entity's span marginal (uncalibrated), whether it is right, and its file."""
    scores: list[float] = []
    right: list[bool] = []
    files: list[str] = []
    for w in windows:
        if w.spans:
            scores += entity_probabilities(lattice(*tagger._crf, w.em), w.path, w.spans, tagger._bounds)
            right += w.right
            files += [w.source] * len(w.spans)
    return scores, right, files


def scores_at(tagger: Tagger, windows: Sequence[_Window],
              platt: tuple[float, float] | None = None) -> tuple[list[float], list[bool]]:
    """Every collected entity's score (raw, or through ``platt``) and whether it is right."""
    scores, right, _ = raw_scores(tagger, windows)
    return (list(apply_platt(np.asarray(scores), platt)) if platt else scores), right


def apply_platt(scores: np.ndarray, platt: tuple[float, float]) -> np.ndarray:
    """``sigmoid(a * logit(p) + b)``, elementwise."""
    return np.asarray(calibrated(list(np.asarray(scores, dtype=np.float64)), platt))


def fit_platt(scores: Sequence[float], right: Sequence[bool], files: Sequence[str]) -> tuple[float, float]:
    """``(a, b)`` of the logistic regression of ``right`` on ``logit(score)``, each file's entities
    weighted ``1 / (its count)`` (Newton's method; a tiny ridge keeps it finite on separable data)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), LOGIT_EPS, 1 - LOGIT_EPS)
    x = np.stack([np.log(p / (1 - p)), np.ones(len(p))], axis=1)
    y = np.asarray(right, dtype=np.float64)
    count = {f: files.count(f) for f in set(files)}
    w = np.array([1.0 / count[f] for f in files])
    w *= len(w) / w.sum()
    def loss(th: np.ndarray) -> float:
        z = x @ th
        return float((w * (np.logaddexp(0.0, z) - y * z)).sum() + 0.5e-6 * th @ th)

    theta = np.array([1.0, 0.0])
    for _ in range(200):
        q = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ ((q - y) * w) + 1e-6 * theta
        hess = (x * (w * q * (1 - q))[:, None]).T @ x + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size = 1.0  # halve a Newton step until the loss goes down (plain Newton can overshoot)
        while size > 1e-8 and loss(theta - size * step) > loss(theta):
            size /= 2
        theta = theta - size * step
        if np.abs(size * step).max() < 1e-10:
            break
    if not (theta[0] > 0 and np.isfinite(theta).all()):
        raise ValueError(f"the score map did not fit (a={theta[0]:.4g}, b={theta[1]:.4g}): too few or one-sided entities")
    return float(theta[0]), float(theta[1])


def write_calibration(artifact: str | Path, platt: tuple[float, float], *, fitted_on: Sequence[str]) -> None:
    """Record the score map in the artifact's ``crf.json`` and its new sha256 in the manifest."""
    artifact = Path(artifact)
    crf_path, manifest_path = artifact / "crf.json", artifact / "manifest.json"
    crf = json.loads(crf_path.read_text(encoding="utf-8"))
    crf["score_calibration"] = {"method": "platt on the logit of the span marginal",
                                "a": round(platt[0], 6), "b": round(platt[1], 6), "fitted_on": list(fitted_on)}
    crf_path.write_text(json.dumps(crf), encoding="utf-8")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"]["crf.json"] = sha256_file(crf_path)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
