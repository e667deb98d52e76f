"""The "ensembles" lever of the model issue, measured: do several checkpoints of the same
architecture, averaged, tag better than each alone?

Each model is loaded as is (``--fp32``: RaNER directories unquantized) and the ensemble averages
the members' per-token emissions and CRF parameters, then decodes once (the usual windows, Viterbi
and merge). Printed: F1 per dev split and their macro average for every member and for the
ensemble, and chars/s; ``--test`` adds MSRA test (final numbers only, never for choosing).

Usage::

    python -W ignore bench/ensemble.py --model ../runs/zh1/best --model ../runs/zh2/best [--fp32] [--test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import DATA, dev_files  # noqa: E402


class MeanEngine:
    """A tagger engine whose emissions and CRF are the members' means (same labels and vocab)."""

    def __init__(self, members: list[Any]) -> None:
        first = members[0]
        if any(m.labels != first.labels for m in members):
            raise SystemExit("members disagree on labels")
        self.members = members
        self.labels = first.labels
        self.max_length = min(m.max_length for m in members)
        self.source = first.source
        self.char_vocab = first.char_vocab
        self.word_encoder = first.word_encoder
        self.crf = tuple(np.mean([m.crf[i] for m in members], axis=0).astype(np.float32) for i in range(3))

    def token_emissions(self, ids: np.ndarray) -> np.ndarray:
        return np.mean([m.token_emissions(ids) for m in self.members], axis=0).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="member model directory (repeatable)")
    ap.add_argument("--splits", type=Path, default=ROOT.parent / "runs" / "data")
    ap.add_argument("--fp32", action="store_true", help="do not quantize RaNER directories at load")
    ap.add_argument("--test", action="store_true", help="also MSRA test (final numbers only)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from worker.model.serving.loading import load_tagger
    from worker.model.serving.tagger import Tagger
    from worker.model.training.evaluate import evaluate_files

    files = dev_files(args.splits) + ([DATA / "msra" / "test.txt"] if args.test else [])
    members = [load_tagger(m, int8=not args.fp32, threads=args.threads) for m in args.model]
    rows: list[tuple[str, Any]] = [(Path(m).parent.name + "/" + Path(m).name, t) for m, t in zip(args.model, members)]
    rows.append(("mean of all", Tagger(MeanEngine([t.engine for t in members]))))
    names = ["msra-dev", "weibo-dev", "resume-dev", "cluener-dev"] + (["MSRA test"] if args.test else [])
    print(f"{'model':<24}" + "".join(f"{n:>12}" for n in names) + f"{'dev macro':>11}{'chars/s':>9}")
    for name, tagger in rows:
        res = evaluate_files(tagger, files)
        f1 = [res["files"][str(f)]["f1"] for f in files]
        macro = sum(f1[:4]) / 4
        speed = sum(r["chars"] for r in res["files"].values()) / sum(r["seconds"] for r in res["files"].values())
        print(f"{name:<24}" + "".join(f"{x:12.4f}" for x in f1) + f"{macro:11.4f}{speed:9.0f}", flush=True)


if __name__ == "__main__":
    main()
