"""Write the train/dev splits the default model is trained and selected on.

MSRA has no dev split: the 2,000 sentences carved from ``msra/train.txt`` by ``shiti model train``
(seed 13) are the shipped model's dev split since stage 1, so they are carved the same way here.
CLUENER's dev split is held back: 1,000 random ``cluener/train.txt`` sentences (seed 13) become
dev. People's Daily (all three files) loses every sentence whose text is in the MSRA dev split
(the two corpora share sentences). MSRA ``test.txt`` is never read.

    python scripts/dev_splits.py --data ../shared/data --out ../runs/data
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from worker.model.bio import Sentence, read_bio

SEED = 13


def write_bio(path: Path, sents: list[Sentence]) -> None:
    """Write sentences as ``CHAR<TAB>TAG`` lines, a blank line after each."""
    with open(path, "w", encoding="utf-8") as fh:
        for s in sents:
            fh.writelines(f"{c}\t{t}\n" for c, t in zip(s.text, s.tags))
            fh.write("\n")


def carve(sents: list[Sentence], n: int) -> tuple[list[Sentence], list[Sentence]]:
    """(train, dev): ``n`` sentences drawn with the fixed seed become dev."""
    shuffled = list(sents)
    random.Random(SEED).shuffle(shuffled)
    return shuffled[n:], shuffled[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    d, out = args.data, args.out
    out.mkdir(parents=True, exist_ok=True)
    msra_train, msra_dev = carve(list(read_bio(d / "msra/train.txt")), 2000)
    dev_texts = {s.text for s in msra_dev}
    pd = [s for f in ("train", "dev", "test") for s in read_bio(d / f"peoples_daily/{f}.txt") if s.text not in dev_texts]
    clue_train, clue_dev = carve(list(read_bio(d / "cluener/train.txt")), 1000)
    for name, sents in {"msra-train": msra_train, "msra-dev": msra_dev, "pd-all": pd,
                        "cluener-train": clue_train, "cluener-dev": clue_dev}.items():
        write_bio(out / f"{name}.txt", sents)
        print(f"{name}: {len(sents)} sentences, {sum(len(s.text) for s in sents)} chars")


if __name__ == "__main__":
    main()
