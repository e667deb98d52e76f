"""Traditional Chinese: F1 of a model on Simplified BIO files, on the same files converted to
Traditional with OpenCC's ``s2t`` (phrase-aware, as real Hong Kong / Taiwan text reads), and on
those tagged the way jobs tag them by default (folded back to Simplified, ``storage/core/fold.py``);
and what the default fold does to the Simplified files themselves.

A sentence whose conversion changes its length is left out of all three (its gold offsets would
move); the count is printed. Files: People's Daily dev, Weibo dev, Resume dev (choose on these) and,
with ``--test``, MSRA test (final numbers only).

    python -W ignore bench/traditional.py [--model models/shiti-zh-small] [--test] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


class Folding:
    """A tagger that folds each text before the model, as ``worker.pipeline.annotate_text`` does."""

    def __init__(self, tagger: Any) -> None:
        self.tagger = tagger

    def annotate(self, texts: Sequence[str]) -> list[list[Any]]:
        from storage.core.fold import fold

        return self.tagger.annotate([fold(t) for t in texts])


def convert(src: Path, out: Path) -> tuple[int, int]:
    """Write ``src`` with its text in Traditional script; ``(kept, dropped)`` sentences."""
    import opencc

    from worker.model.bio import read_bio

    s2t = opencc.OpenCC("s2t").convert
    kept = dropped = 0
    with open(out, "w", encoding="utf-8") as fh_trad, open(out.with_suffix(".simp.txt"), "w", encoding="utf-8") as fh:
        for sent in read_bio(src):
            trad = s2t(sent.text)
            if len(trad) != len(sent.text):
                dropped += 1
                continue
            kept += 1
            for a, b, tag in zip(sent.text, trad, sent.tags):
                fh.write(f"{a}\t{tag}\n")
                fh_trad.write(f"{b}\t{tag}\n")
            fh.write("\n")
            fh_trad.write("\n")
    return kept, dropped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "shiti-zh-small"))
    ap.add_argument("--test", action="store_true", help="also MSRA test (final numbers only)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from worker.model.evaluate import evaluate
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(args.model, threads=args.threads)
    files = [DATA / "peoples_daily" / "dev.txt", DATA / "weibo" / "dev.txt", DATA / "resume" / "dev.txt"]
    if args.test:
        files.append(DATA / "msra" / "test.txt")
    print(f"model {args.model}; Traditional = OpenCC s2t of each sentence; folded = the job default")
    print(f"{'file':28} {'sentences':>10} {'dropped':>8} {'Simplified':>11} {'Simpl. folded':>14} "
          f"{'Traditional':>12} {'folded':>8} {'folded / Simplified':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for src in files:
            trad = Path(tmp) / f"{src.parent.name}-{src.stem}.txt"
            kept, dropped = convert(src, trad)
            simp = evaluate(tagger, trad.with_suffix(".simp.txt"))["f1"]
            simp_folded = evaluate(Folding(tagger), trad.with_suffix(".simp.txt"))["f1"]  # type: ignore[arg-type]
            raw = evaluate(tagger, trad)["f1"]
            folded = evaluate(Folding(tagger), trad)["f1"]  # type: ignore[arg-type]
            name = f"{src.parent.name}/{src.name}"
            print(f"{name:28} {kept:10d} {dropped:8d} {simp:11.4f} {simp_folded:14.4f} {raw:12.4f} {folded:8.4f} "
                  f"{folded / simp:20.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
