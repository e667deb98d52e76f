"""Accuracy of models per domain: exact-match P/R/F1 on every dev split, their macro average, and
(with ``--test``) MSRA test, for one or more models side by side.

The dev splits are those the default model is selected on (``scripts/dev_splits.py`` writes the
carved ones): MSRA dev (2,000 sentences carved from train), Weibo dev, Resume dev and CLUENER dev
(1,000 sentences carved from train). MSRA ``test.txt`` is for final numbers only: never pick a
model or a setting on it.

Usage::

    python -W ignore bench/accuracy.py --model models/shiti-zh-small [--model OTHER ...]
        [--splits ../runs/data] [--test] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def dev_files(splits: Path) -> list[Path]:
    """The dev splits, in table order."""
    return [splits / "msra-dev.txt", DATA / "weibo" / "dev.txt", DATA / "resume" / "dev.txt",
            splits / "cluener-dev.txt"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    ap.add_argument("--splits", type=Path, default=ROOT.parent / "runs" / "data",
                    help="where scripts/dev_splits.py wrote msra-dev.txt and cluener-dev.txt")
    ap.add_argument("--test", action="store_true", help="also MSRA test (final numbers only)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from worker.model.evaluate import evaluate_files
    from worker.tagger.loading import load_tagger

    files = dev_files(args.splits)
    missing = [f for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: run scripts/dev_splits.py --out {args.splits}")
    names = ["msra-dev", "weibo-dev", "resume-dev", "cluener-dev"]
    head = f"{'model':<28}" + "".join(f"{n:>13}" for n in names) + f"{'dev macro':>11}"
    head += f"{'MSRA test':>11}" if args.test else ""
    print("exact-match micro F1 (P/R in --json of `shiti model evaluate`)")
    print(head)
    for model in args.model:
        tagger = load_tagger(model, threads=args.threads)
        res = evaluate_files(tagger, files)
        row = f"{Path(model).name:<28}" + "".join(f"{res['files'][str(f)]['f1']:13.4f}" for f in files)
        row += f"{res['macro_f1']:11.4f}"
        if args.test:
            row += f"{evaluate_files(tagger, [DATA / 'msra' / 'test.txt'])['macro_f1']:11.4f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
