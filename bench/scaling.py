"""Worker scaling on this machine: 1 worker x 1 thread, 2 workers x 1 thread, 1 worker x 2 threads.

Each configuration runs the e2e corpus (MSRA test sentences + 2k-20k-char documents) through
the full pipeline (``shiti submit`` -> embedded redis -> workers -> SQLite), timed from submit to
job done with the workers already warm. Prints chars/s (median of ``--runs``), the best setting,
and the current defaults (``Settings.threads``, one worker per ``shiti worker``).

Usage: ``python bench/scaling.py [--model DIR] [--runs 3] [--fraction 1.0]``
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import (
    base_parser, build_corpus, corpus_chars, cpu_note, median, pipeline, resolve_model, table, write_jsonl,
)

CONFIGS = ((1, 1), (2, 1), (1, 2))  # (worker processes, torch threads each)


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the corpus to use")
    args = p.parse_args()
    from storage.core.settings import Settings

    model, desc = resolve_model(args.model)
    docs = build_corpus(fraction=args.fraction)
    chars = corpus_chars(docs)
    root = Path(tempfile.mkdtemp(prefix="shiti-scaling-"))
    corpus = write_jsonl(docs, root / "corpus.jsonl")
    speeds: dict[tuple[int, int], list[float]] = {c: [] for c in CONFIGS}
    per_cpu: dict[tuple[int, int], list[float]] = {c: [] for c in CONFIGS}
    try:
        for run in range(args.runs):
            for workers, threads in CONFIGS:  # interleaved, so slow drift in load hits all alike
                with pipeline(model, root, workers=workers, threads=threads) as pipe:
                    res = pipe.submit_and_wait(corpus)
                speeds[(workers, threads)].append(chars / res["wall"])
                per_cpu[(workers, threads)].append(chars / res["cpu"])
                print(f"run {run + 1}: {workers} worker(s) x {threads} thread(s): "
                      f"{chars / res['wall']:,.0f} chars/s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = median(speeds[(1, 1)])
    rows = [[f"{w} worker(s) x {t} thread(s)", median(v), median(v) / base, median(per_cpu[(w, t)]), w * t, *v]
            for (w, t), v in speeds.items()]
    best = max(speeds, key=lambda c: median(speeds[c]))
    default = Settings().threads
    print()
    print(f"scaling: model {desc}, corpus {len(docs):,} docs / {chars:,} chars, submit -> done; {cpu_note()}")
    print("chars per CPU-s = efficiency (all pipeline processes); on a busy machine it is the only "
          "stable column, and it shows what a second torch thread costs.")
    print(table(["setting", "chars/s (median)", "vs 1x1", "chars per CPU-s", "cores used",
                 *[f"run {i + 1}" for i in range(args.runs)]], rows))
    print(f"best: {best[0]} worker(s) x {best[1]} thread(s). Current default: Settings.threads = {default}, "
          f"`shiti worker` = 1 process (-c 1); scale out by starting more `shiti worker`s.")
    if best[1] != default:
        print(f"-> the best thread count ({best[1]}) differs from the default ({default}).")


if __name__ == "__main__":
    main()
