"""The "LAC" lever of the model issue, measured without retraining: Baidu LAC 2.1.2's BiGRU-CRF
(``../shared/pretrained/lac-2.1.2``, Apache-2.0) alone, and its PER/LOC/ORG predictions as a prior
on the served model's emissions (LAC at serving time, "stacking" without training).

LAC runs as a numpy re-implementation of exactly its network (``PROVENANCE.md`` there: characters
through ``q2b`` to ``word.dic`` ids, two BiGRU layers with Paddle's GRU cell, a 49-tag CRF whose
tags 16-21 are PER/LOC/ORG B/I). The prior adds ``alpha`` to the model's B-T emission where LAC
starts a T entity and to I-T where it continues one, before Viterbi. ``alpha`` 0 is the model
alone; choose ``alpha`` on the dev macro, then ``--test ALPHA`` reports MSRA test (final numbers).

Usage::

    python -W ignore bench/lac_lever.py [--model models/shiti-zh-small] [--alpha 0 0.5 1 2 4] [--test ALPHA]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accuracy import DATA, dev_files  # noqa: E402
from lexicon_prior import prior_args, prior_tagger  # noqa: E402

LAC_DIR = ROOT.parent / "shared" / "pretrained" / "lac-2.1.2"
ENTITY_TAGS = {16: ("B", "PER"), 17: ("I", "PER"), 18: ("B", "LOC"), 19: ("I", "LOC"), 20: ("B", "ORG"),
               21: ("I", "ORG")}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    text: str = ""
    score: float = 1.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Lac:
    """LAC 2.1.2's lexical analyzer, character input, in numpy."""

    def __init__(self, path: Path = LAC_DIR) -> None:
        from safetensors.numpy import load_file

        self.w = {k: v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
        self.ids = {}
        for line in (path / "word.dic").read_text(encoding="utf-8").split("\n"):
            if "\t" in line:
                i, unit = line.split("\t", 1)
                self.ids[unit] = int(i)
        self.oov = self.ids["OOV"]
        self.q2b = dict(line.split("\t", 1) for line in (path / "q2b.dic").read_text(encoding="utf-8").split("\n")
                        if "\t" in line)
        h = 128
        self.grus = []
        for k in range(4):
            flat = self.w[f"gru_{k}.w_0"].reshape(-1)
            self.grus.append((flat[: 2 * h * h].reshape(h, 2 * h), flat[2 * h * h:].reshape(h, h),
                              self.w[f"gru_{k}.b_0"].reshape(-1)))
        crf = self.w["crfw"]
        self.start, self.end, self.trans = crf[0], crf[1], crf[2:]

    def _gru(self, x: np.ndarray, k: int) -> np.ndarray:
        """GRU ``k`` (Paddle's cell) forward over a padded batch (B, T, d); positions past a text's
        end are junk."""
        proj = np.ascontiguousarray((x @ self.w[f"fc_{k}.w_0"] + self.w[f"fc_{k}.b_0"]).transpose(1, 0, 2))
        w_ur, w_c, b = self.grus[k]
        proj[:, :, :256] += b[:256]
        proj[:, :, 256:] += b[256:]
        h = np.zeros((x.shape[0], 128), dtype=np.float32)
        out = np.empty((x.shape[1], x.shape[0], 128), dtype=np.float32)
        for t in range(x.shape[1]):
            ur = _sigmoid(proj[t, :, :256] + h @ w_ur)
            u, r = ur[:, :128], ur[:, 128:]
            c = np.tanh(proj[t, :, 256:] + (r * h) @ w_c)
            h = (1 - u) * h + u * c
            out[t] = h
        return out.transpose(1, 0, 2)

    def tags_many(self, texts: list[str], batch: int = 256) -> list[list[int]]:
        """The 49-tag Viterbi path of each text, the GRUs and Viterbi run over padded batches
        (a text's path does not depend on its batch-mates)."""
        out: list[list[int]] = [[] for _ in texts]
        order = sorted((i for i, t in enumerate(texts) if t), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch):
            part = order[start:start + batch]
            lens = np.array([len(texts[i]) for i in part])
            width = int(lens.max())
            ids = np.full((len(part), width), self.oov, dtype=np.int64)
            for row, i in enumerate(part):
                ids[row, :lens[row]] = [self.ids.get(self.q2b.get(c, c), self.oov) for c in texts[i]]
            # Reverse each text within its own length, so the backward GRU starts at its last character.
            t = np.arange(width)[None, :]
            rev = np.where(t < lens[:, None], lens[:, None] - 1 - t, t)
            rows = np.arange(len(part))[:, None]
            x = self.w["word_emb"][ids]
            for layer in range(2):
                fwd = self._gru(x, 2 * layer)
                bwd = self._gru(x[rows, rev], 2 * layer + 1)[rows, rev]
                x = np.concatenate([fwd, bwd], axis=2)
            em = x @ self.w["fc_4.w_0"] + self.w["fc_4.b_0"]
            score = self.start + em[:, 0]
            back = np.zeros((width, len(part), em.shape[2]), dtype=np.int64)
            for step in range(1, width):
                cand = score[:, :, None] + self.trans
                back[step] = cand.argmax(1)
                live = (step < lens)[:, None]
                score = np.where(live, cand.max(1) + em[:, step], score)
            last = (score + self.end).argmax(1)
            for row, i in enumerate(part):
                path = [int(last[row])]
                for step in range(lens[row] - 1, 0, -1):
                    path.append(int(back[step, row, path[-1]]))
                out[i] = path[::-1]
        return out

    def tags(self, text: str) -> list[int]:
        """The 49-tag Viterbi path of ``text`` (one tag per character)."""
        return self.tags_many([text])[0]

    def entities(self, text: str) -> list[Span]:
        """PER/LOC/ORG spans: a B tag opens one, I tags of the same type extend it."""
        out: list[Span] = []
        open_: list[Any] | None = None
        for i, tag in enumerate(self.tags(text) if text else []):
            bio = ENTITY_TAGS.get(tag)
            if bio and bio[0] == "I" and open_ and open_[2] == bio[1]:
                open_[1] = i + 1
                continue
            if open_:
                out.append(Span(open_[0], open_[1], open_[2], text[open_[0]:open_[1]]))
                open_ = None
            if bio:
                open_ = [i, i + 1, bio[1]]
        if open_:
            out.append(Span(open_[0], open_[1], open_[2], text[open_[0]:open_[1]]))
        return out


class LacTagger:
    """LAC alone, with the tagger interface the evaluator uses."""

    def __init__(self, lac: Lac) -> None:
        self.lac = lac

    def annotate(self, texts: Any, *, deadline: float | None = None) -> list[list[Span]]:
        return [self.lac.entities(t) for t in texts]


def lac_prior_tagger(base: Any, lac: Lac, alpha: float, cache: dict[str, list[Span]]) -> Any:
    """``base``'s model with LAC's entities as an emission prior of weight ``alpha``."""
    labels = base.labels

    def bonus(text: str) -> np.ndarray:
        out = np.zeros((len(text), len(labels)), dtype=np.float32)
        if alpha:
            if text not in cache:
                cache[text] = lac.entities(text)
            for e in cache[text]:
                out[e.start, labels.index(f"B-{e.label}")] += alpha
                out[e.start + 1:e.end, labels.index(f"I-{e.label}")] += alpha
        return out

    return prior_tagger(base, bonus)


def main() -> None:
    args = prior_args(__doc__, "MSRA test at this alpha, at 0, and LAC alone")
    from worker.model.serving.loading import load_tagger
    from worker.model.training.evaluate import evaluate_files

    lac = Lac()
    base = load_tagger(args.model, threads=args.threads)
    cache: dict[str, list[Span]] = {}
    if args.test is not None:
        test = [DATA / "msra" / "test.txt"]
        for name, tagger in (("LAC alone", LacTagger(lac)), ("alpha 0", lac_prior_tagger(base, lac, 0.0, cache)),
                             (f"alpha {args.test:g}", lac_prior_tagger(base, lac, args.test, cache))):
            print(f"MSRA test {name}: F1 {evaluate_files(tagger, test)['macro_f1']:.4f}", flush=True)
        return
    files = dev_files(args.splits)
    names = ["msra-dev", "weibo-dev", "resume-dev", "cluener-dev"]
    print(f"{'':<12}" + "".join(f"{n:>13}" for n in names) + f"{'dev macro':>11}{'chars/s':>9}")
    t0 = time.perf_counter()
    res = evaluate_files(LacTagger(lac), files)
    chars = sum(r["chars"] for r in res["files"].values())
    print(f"{'LAC alone':<12}" + "".join(f"{res['files'][str(f)]['f1']:13.4f}" for f in files)
          + f"{res['macro_f1']:11.4f}{chars / (time.perf_counter() - t0):9.0f}", flush=True)
    for alpha in args.alpha:
        res = evaluate_files(lac_prior_tagger(base, lac, alpha, cache), files)
        print(f"{'alpha ' + format(alpha, 'g'):<12}" + "".join(f"{res['files'][str(f)]['f1']:13.4f}" for f in files)
              + f"{res['macro_f1']:11.4f}", flush=True)


if __name__ == "__main__":
    main()
