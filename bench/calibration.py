"""Calibration of entity scores: the old score (the softmax probability of the entity's first
character's tag), the raw span marginal (worker/tagger/marginals.py), and the marginal through the
Platt map fitted on the even sentences of each dev file (each file weighing the same), all
measured on the odd sentences; with ``--test`` also on MSRA test (final numbers only). Writes the
reliability diagram to docs/calibration.png and, with ``--write``, the map into the artifact (the
one `shiti model calibrate` fits on the whole dev files).

    python -W ignore bench/calibration.py [--model models/shiti-zh-small] [--write] [--test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT.parent / "runs" / "data"  # scripts/dev_splits.py: MSRA dev and CLUENER dev carved from train


def dev_files() -> list[Path]:
    files = [RUNS / "msra-dev.txt", DATA / "peoples_daily" / "dev.txt", DATA / "weibo" / "dev.txt",
             DATA / "resume" / "dev.txt", RUNS / "cluener-dev.txt"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        sys.exit(f"missing {missing}: run scripts/dev_splits.py --data ../shared/data --out ../runs/data")
    return files


def first_char_scores(windows) -> tuple[list[float], list[bool]]:  # type: ignore[no-untyped-def]
    scores, right = [], []
    for w in windows:
        em = w.em.astype(np.float64)
        z = np.log(np.exp(em - em.max(1, keepdims=True)).sum(1)) + em.max(1)
        for (i, _), ok in zip(w.spans, w.right):
            scores.append(float(np.exp(em[i, w.path[i]] - z[i])))
            right.append(ok)
    return scores, right


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "shiti-zh-small"))
    ap.add_argument("--write", action="store_true", help="write the fitted temperature into the artifact")
    ap.add_argument("--test", action="store_true", help="also measure MSRA test (final numbers only)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "calibration.png"))
    args = ap.parse_args()

    from worker.model.calibrate import calibration, collect, fit_platt, raw_scores, scores_at, write_calibration
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(args.model)
    files = dev_files()
    fit = collect(tagger, files, take=slice(0, None, 2))
    check = collect(tagger, files, take=slice(1, None, 2))
    platt = fit_platt(*raw_scores(tagger, fit))
    print(f"fit on {sum(len(w.spans) for w in fit):,} predicted entities (even sentences of {len(files)} dev files); "
          f"score = sigmoid({platt[0]:.4f} * logit(marginal) + {platt[1]:.4f})")
    hard = [w for w in check if "weibo" in w.source or "cluener" in w.source]
    sets = {"dev (odd halves)": check, "Weibo + CLUENER dev (odd)": hard}
    if args.test:
        sets["MSRA test"] = collect(tagger, [DATA / "msra" / "test.txt"])
    rows = {}
    for name, windows in sets.items():
        for how, (s, r) in {"first-character tag (old)": first_char_scores(windows),
                            "span marginal": scores_at(tagger, windows),
                            "span marginal, calibrated": scores_at(tagger, windows, platt)}.items():
            c = calibration(s, r)
            rows[(name, how)] = c
            print(f"{name:26} {how:27} n={c['entities']:>6}  ECE {c['ece']:.4f}  "
                  f">=0.5: P {c['at_0.5']['precision']} cov {c['at_0.5']['coverage']}  "
                  f">=0.9: P {c['at_0.9']['precision']} cov {c['at_0.9']['coverage']}")
    per_file = {f.name if f.parent.name == "data" else f"{f.parent.name}/{f.name}": collect(tagger, [f], take=slice(1, None, 2))
                for f in files}
    for name, windows in per_file.items():
        c = calibration(*scores_at(tagger, windows, platt))
        print(f"  per file {name:22} n={c['entities']:>5}  ECE {c['ece']:.4f}  >=0.9: P {c['at_0.9']['precision']}")
    if args.write:
        whole = fit_platt(*raw_scores(tagger, collect(tagger, files)))
        write_calibration(args.model, whole, fitted_on=[f"{f.parent.name}/{f.name}" for f in files])
        print(f"map fitted on the whole dev files, sigmoid({whole[0]:.4f} * logit + {whole[1]:.4f}), written to "
              f"{args.model}/crf.json")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.8), squeeze=False)
    for ax, name in zip(axes[0], sets):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
        for (set_name, how), c in rows.items():
            if set_name != name:
                continue
            xs = [b["mean_score"] for b in c["bins"]]
            ys = [b["right"] for b in c["bins"]]
            ax.plot(xs, ys, marker="o", ms=4, label=f"{how} (ECE {c['ece']:.3f})")
        ax.set(title=f"{name}: reliability", xlabel="mean score in bin", ylabel="share of entities right",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
