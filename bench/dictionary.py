"""What a user dictionary costs: tagging speed with a 100,000-entry dictionary against none, the
time to compile it, and its memory, on the bundled news sample through ``annotate_text`` (the
worker's per-document path: tag, merge, then the dictionary).

Rounds alternate the two settings in one process (none, dict, none, dict, ...) and each reports
its median. The dictionary: 100,000 random 2-6 character names of CJK characters from the corpus
(so the automaton is as dense as a real one), plus the sample's 200 most frequent model entities
forced and 50 blocked, so it really changes rows.

    python -W ignore bench/dictionary.py [--entries 100000] [--rounds 5] [--docs 241]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import median, table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--docs", type=int, default=241)
    args = ap.parse_args()

    from storage.core.lexicon import Term
    from storage.core.settings import DEFAULT_MODEL, Settings
    from worker.pipeline import annotate_text
    from worker.tagger.lexicon import Lexicon
    from worker.tagger.loading import load_tagger

    lines = (ROOT / "producer" / "samples" / "news.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[: args.docs]]
    chars = sum(map(len, texts))
    settings = Settings()
    tagger = load_tagger(DEFAULT_MODEL)
    found = Counter((e.text, e.label) for t in texts for e in annotate_text(t, tagger, settings))
    common = [k for k, _ in found.most_common(250)]
    rng = random.Random(0)
    pool = sorted({c for t in texts for c in t if "\u4e00" <= c <= "\u9fff"})
    forced = dict(common[:200])
    blocked = [(t, lab) for t, lab in common[200:] if t not in forced]
    names: dict[str, str] = {}
    while len(names) + len(forced) + len(blocked) < args.entries:
        name = "".join(rng.choice(pool) for _ in range(rng.randint(2, 6)))
        if name not in forced and all(name != t for t, _ in blocked):
            names[name] = rng.choice(["PER", "LOC", "ORG"])
    terms = [Term(t, lab) for t, lab in (names | forced).items()] + [Term(t, lab, "block") for t, lab in blocked]

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    lexicon = Lexicon.build(terms)
    build = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    times: dict[str, list[float]] = {"none": [], "dict": []}
    changed = 0
    for _ in range(args.rounds):
        for name, lex in (("none", None), ("dict", lexicon)):
            t0 = time.perf_counter()
            out = [annotate_text(t, tagger, settings, lexicon=lex) for t in texts]
            times[name].append(time.perf_counter() - t0)
            if lex is not None:
                plain = [annotate_text(t, tagger, settings) for t in texts[:50]]
                changed = sum(a != b for a, b in zip(out, plain))
    t_none, t_dict = median(times["none"]), median(times["dict"])
    print(f"{len(texts)} documents, {chars:,} characters; dictionary of {len(terms):,} entries; "
          f"{args.rounds} interleaved rounds, medians; 1 thread")
    print(table(["setting", "seconds", "chars/s", "vs none"], [
        ["no dictionary", f"{t_none:.2f}", f"{chars / t_none:,.0f}", "1.000"],
        [f"{len(terms):,} entries", f"{t_dict:.2f}", f"{chars / t_dict:,.0f}", f"{t_dict / t_none:.3f}"],
    ]))
    print(f"compile: {build:.2f} s; peak RSS grew {(rss1 - rss0) / 1024:.0f} MiB while compiling; "
          f"{changed} of the first 50 documents have other entities with it")


if __name__ == "__main__":
    main()
