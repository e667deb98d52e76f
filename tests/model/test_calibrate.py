"""Calibrated entity scores on the shipped artifact: `shiti model calibrate` fits the Platt map on
dev files and writes it into crf.json (the manifest still verifies, the content hash changes),
taggers apply it (same order, other values), and `shiti model evaluate --json` reports ECE and
precision / coverage at 0.5 and 0.9."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from storage.catalog import content_hash
from storage.core.settings import DEFAULT_MODEL
from worker.model.calibrate import calibration, fit_platt
from worker.model.cli import model
from worker.tagger.loading import load_tagger
from worker.tagger.marginals import calibrated

SENTENCES = [("李明在北京的清华大学工作。", [("李明", "PER"), ("北京", "LOC"), ("清华大学", "ORG")]),
             ("今天跟张伟去成都吃火锅了，好开心", [("张伟", "PER"), ("成都", "LOC")]),
             ("中国人民银行决定下调存款准备金率。", [("中国人民银行", "ORG")]),
             ("王小明说苹果很好吃，他住在小红家。", [("王小明", "PER")])]


def _bio(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for text, ents in SENTENCES * 3:
            tags = ["O"] * len(text)
            for name, label in ents:
                i = text.index(name)
                tags[i: i + len(name)] = [f"B-{label}"] + [f"I-{label}"] * (len(name) - 1)
            fh.writelines(f"{c}\t{t}\n" for c, t in zip(text, tags))
            fh.write("\n")
    return path


def test_calibration_measures_ece_precision_and_coverage() -> None:
    got = calibration([0.95, 0.95, 0.55, 0.15], [True, False, True, False])
    # bins: 0.1-0.2 (0.15, wrong), 0.5-0.6 (0.55, right), 0.9-1.0 (two at 0.95, one right)
    assert got["ece"] == round((0.15 + 0.45 + 2 * 0.45) / 4, 4)
    assert got["at_0.9"] == {"precision": 0.5, "coverage": 0.5}
    assert got["at_0.5"] == {"precision": round(2 / 3, 4), "coverage": 0.75}


def test_platt_fit_weighs_every_file_the_same_and_recovers_a_known_map() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, size=20000)
    raw = 1 / (1 + np.exp(-z))
    truth = 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    right = rng.random(20000) < truth
    a, b = fit_platt(raw.tolist(), right.tolist(), ["f"] * 20000)
    assert abs(a - 0.5) < 0.05 and abs(b + 1.0) < 0.1
    # A big file of sure-right entities and a small file of coin flips: weighted per file, the
    # small one pulls the map as hard as the big one
    files = ["big"] * 9000 + ["small"] * 1000
    scores = [0.99] * 10000
    outcome = [True] * 9000 + list(rng.random(1000) < 0.5)
    pooled_mean = calibrated([0.99], fit_platt(scores, outcome, ["one"] * 10000))[0]
    per_file = calibrated([0.99], fit_platt(scores, outcome, files))[0]
    assert abs(pooled_mean - np.mean(outcome)) < 0.02 and abs(per_file - 0.75) < 0.03


def test_calibrate_writes_the_map_and_taggers_apply_it(tmp_path: Path) -> None:
    art = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL, art)
    crf = json.loads((art / "crf.json").read_text())
    crf.pop("score_calibration", None)
    (art / "crf.json").write_text(json.dumps(crf))
    from worker.model.calibrate import write_calibration

    write_calibration(art, (1.0, 0.0), fitted_on=[])  # identity map: the raw marginal
    before = content_hash(art)
    raw = load_tagger(art).annotate([t for t, _ in SENTENCES])
    dev = _bio(tmp_path / "dev.txt")
    out = CliRunner().invoke(model, ["calibrate", str(art), "--data", str(dev), "--json"])
    assert out.exit_code == 0, out.output
    fitted = json.loads(out.output)
    assert fitted["a"] > 0 and fitted["before"]["entities"] == fitted["after"]["entities"] > 0
    assert json.loads((art / "crf.json").read_text())["score_calibration"]["a"] == round(fitted["a"], 6)
    assert content_hash(art) != before  # jobs tagged with it record another model
    now = load_tagger(art).annotate([t for t, _ in SENTENCES])  # the manifest still verifies
    for a, b in zip(raw, now):
        assert [(e.start, e.end, e.label) for e in a] == [(e.start, e.end, e.label) for e in b]
        want = calibrated([e.score for e in a], (fitted["a"], fitted["b"]))
        assert np.allclose([e.score for e in b], want, atol=1e-9)
    # evaluate --json reports calibration
    ev = CliRunner().invoke(model, ["evaluate", "--model", str(art), "--data", str(dev), "--json"])
    assert ev.exit_code == 0, ev.output
    cal = json.loads(ev.output)["calibration"]
    assert {"ece", "at_0.5", "at_0.9", "entities", "bins"} <= set(cal) and 0 <= cal["ece"] <= 1


def test_the_shipped_model_is_calibrated_and_scores_are_probabilities() -> None:
    crf = json.loads((Path(DEFAULT_MODEL) / "crf.json").read_text())
    assert crf["score_calibration"]["a"] > 0
    found = load_tagger(DEFAULT_MODEL).annotate([t for t, _ in SENTENCES])
    assert all(0 < e.score < 1 for ents in found for e in ents)
