"""The "lexicon" lever of the model issue, measured without retraining: jieba's dictionary words
tagged person / place / organisation (``nr*`` / ``ns*`` / ``nt*``, about 350k of them) as a prior
on the model's emissions.

For every dictionary word of type T (two characters or more) found in a text, ``alpha`` is added
to the B-T emission of its first character and to the I-T emission of the others, before Viterbi
(overlapping words add up). ``alpha`` 0 is the model alone. Printed per ``alpha``: F1 per dev split
and their macro average; choose ``alpha`` on the dev macro, then ``--test ALPHA`` reports MSRA test
for that value and 0 (final numbers only).

A training-time variant (soft-lexicon features as inputs of the BERT-CRF) would let the model
learn when to trust the dictionary; this measures what the dictionary knows that the model does not.

Usage (jieba is for this measurement only: ``pip install jieba==0.42.1``)::

    python -W ignore bench/lexicon_prior.py --model models/shiti-zh-small --alpha 0 0.5 1 2 4 [--test 1]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import DATA, dev_files  # noqa: E402

TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
MAX_WORD = 10


def jieba_lexicon() -> dict[str, str]:
    """Words of jieba's main dictionary tagged nr*/ns*/nt*, by entity type (2+ characters)."""
    import jieba

    words: dict[str, str] = {}
    path = Path(jieba.__file__).with_name("dict.txt")
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and len(parts[0]) >= 2 and parts[2][:2] in TYPES:
            words.setdefault(parts[0], TYPES[parts[2][:2]])
    return words


def prior(text: str, lexicon: dict[str, str], labels: list[str], alpha: float) -> np.ndarray:
    """(len(text), labels) emission bonus of the dictionary words in ``text``."""
    out = np.zeros((len(text), len(labels)), dtype=np.float32)
    if not alpha:
        return out
    index = {lab: i for i, lab in enumerate(labels)}
    for start, end, typ in matches(text, lexicon):
        out[start, index[f"B-{typ}"]] += alpha
        out[start + 1:end, index[f"I-{typ}"]] += alpha
    return out


def matches(text: str, lexicon: dict[str, str]) -> Iterator[tuple[int, int, str]]:
    """``(start, end, type)`` of every dictionary word in ``text`` (overlaps included)."""
    for start in range(len(text)):
        for end in range(start + 2, min(len(text), start + MAX_WORD) + 1):
            typ = lexicon.get(text[start:end])
            if typ is not None:
                yield start, end, typ


class PriorEngine:
    """Wraps an engine; adds ``current`` (the window's bonus) to its per-character emissions."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        for name in ("labels", "max_length", "source", "char_vocab", "word_encoder", "crf"):
            setattr(self, name, getattr(engine, name))
        self.current: np.ndarray | None = None

    def token_emissions(self, ids: np.ndarray) -> np.ndarray:
        em = self.engine.token_emissions(ids).copy()
        if self.current is not None and len(self.current) == len(em) - 2:
            em[1:-1] += self.current
        return em


def prior_tagger(base: Any, bonus: Callable[[str], np.ndarray]) -> Any:
    """A tagger over ``base``'s engine that adds ``bonus(text)`` ((len(text), labels)) to each
    document's per-character emissions before Viterbi."""
    from worker.model.serving.tagger import Tagger

    class PriorTagger(Tagger):
        def annotate(self, texts: Any, *, deadline: float | None = None) -> Any:
            self._bonus = [bonus(t) for t in texts]
            return super().annotate(texts, deadline=deadline)

        def _run(self, item: Any) -> Any:
            w = item.window
            self.engine.current = self._bonus[item.doc][w.start:w.end] if item.word_index is None else None
            return super()._run(item)

    return PriorTagger(PriorEngine(base.engine), max_length=base.max_length, overlap=base.overlap)


def lexicon_tagger(base: Any, lexicon: dict[str, str], alpha: float) -> Any:
    """A tagger over ``base``'s engine with the dictionary prior at ``alpha``."""
    return prior_tagger(base, lambda text: prior(text, lexicon, base.labels, alpha))


def prior_args(doc: str | None, test_help: str) -> argparse.Namespace:
    """The command line of the emission-prior benches (this one and ``lac_lever.py``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "shiti-zh-small"))
    ap.add_argument("--splits", type=Path, default=ROOT.parent / "runs" / "data")
    ap.add_argument("--alpha", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--test", type=float, default=None, help=test_help)
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args()


def main() -> None:
    args = prior_args(__doc__, "MSRA test at this alpha and at 0 (final numbers)")
    from worker.model.serving.loading import load_tagger
    from worker.model.training.evaluate import evaluate_files

    lexicon = jieba_lexicon()
    print(f"jieba lexicon: {len(lexicon):,} words "
          + ", ".join(f"{t} {sum(1 for v in lexicon.values() if v == t):,}" for t in ("PER", "LOC", "ORG")))
    base = load_tagger(args.model, threads=args.threads)
    if args.test is not None:
        test = DATA / "msra" / "test.txt"
        for alpha in (0.0, args.test):
            res = evaluate_files(lexicon_tagger(base, lexicon, alpha), [test])
            print(f"MSRA test alpha {alpha:g}: F1 {res['files'][str(test)]['f1']:.4f}", flush=True)
        return
    files = dev_files(args.splits)
    names = ["msra-dev", "weibo-dev", "resume-dev", "cluener-dev"]
    print(f"{'alpha':<8}" + "".join(f"{n:>13}" for n in names) + f"{'dev macro':>11}")
    for alpha in args.alpha:
        res = evaluate_files(lexicon_tagger(base, lexicon, alpha), files)
        print(f"{alpha:<8g}" + "".join(f"{res['files'][str(f)]['f1']:13.4f}" for f in files)
              + f"{res['macro_f1']:11.4f}", flush=True)


if __name__ == "__main__":
    main()
