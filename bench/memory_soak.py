"""Worker memory over time: RSS of the pool child after model load and after each of N passes.

One ``celery worker`` (prefork, one child) is started as ``shiti worker`` would; the e2e corpus
(MSRA test sentences + 2k-20k-char documents) is submitted ``--passes`` times, one job after the
other. Printed: the child's RSS after load and after each pass, growth vs pass 1 (goal <= 5 %),
the child's and the parent's peak RSS (``VmHWM``), and the ``worker_max_memory_per_child``
these numbers suggest next to what ``storage/broker/queue.py`` sets (``Settings.max_memory_per_child``).

Usage: ``python bench/memory_soak.py [--model DIR] [--runs 1] [--passes 5] [--fraction 1.0]``
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import (
    base_parser, build_corpus, corpus_chars, cpu_note, median, pipeline, resolve_model, rss_kib, table,
    write_jsonl,
)


def one_run(model: str, corpus: Path, root: Path, *, passes: int, threads: int) -> dict[str, list[float]]:
    """RSS trace (MiB) of one fresh worker over ``passes`` jobs."""
    with pipeline(model, root, workers=1, threads=threads) as pipe:
        w = pipe.workers[0]
        child = w.child()
        rss = [rss_kib(child) / 1024]
        for _ in range(passes):
            pipe.submit_and_wait(corpus)
            if w.child() != child:
                raise RuntimeError("the pool child was replaced mid-soak (max memory/tasks per child hit?)")
            rss.append(rss_kib(child) / 1024)
        return {"rss": rss, "child_peak": [rss_kib(child, "VmHWM") / 1024],
                "parent_peak": [rss_kib(w.pid, "VmHWM") / 1024], "parent_rss": [rss_kib(w.pid) / 1024]}


def main() -> None:
    p = base_parser(__doc__)
    p.set_defaults(runs=1)
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the corpus to use")
    args = p.parse_args()
    from storage.broker.queue import celery_config
    from storage.core.settings import Settings

    settings = Settings()
    model, desc = resolve_model(args.model)
    docs = build_corpus(fraction=args.fraction)
    root = Path(tempfile.mkdtemp(prefix="shiti-soak-"))
    corpus = write_jsonl(docs, root / "corpus.jsonl")
    runs = []
    try:
        for run in range(args.runs):
            runs.append(one_run(model, corpus, root, passes=args.passes, threads=settings.threads))
            print(f"run {run + 1}: child RSS MiB " + " -> ".join(f"{x:.0f}" for x in runs[-1]["rss"]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rss = [median([r["rss"][i] for r in runs]) for i in range(args.passes + 1)]
    child_peak = median([r["child_peak"][0] for r in runs])
    parent_peak = median([r["parent_peak"][0] for r in runs])
    rows = [["after load + warm-up", rss[0], float("nan")]]
    rows += [[f"after pass {i}", rss[i], (rss[i] / rss[1] - 1) * 100] for i in range(1, args.passes + 1)]
    growth = (rss[-1] / rss[1] - 1) * 100
    print()
    print(f"memory soak: model {desc}, {settings.threads} thread(s), corpus {len(docs):,} docs / "
          f"{corpus_chars(docs):,} chars per pass, medians of {args.runs} run(s); {cpu_note()}")
    print(table(["worker child", "RSS MiB", "growth vs pass 1 %"], rows))
    print(f"growth pass 1 -> {args.passes}: {growth:+.1f} % (goal <= 5 %: {'MET' if growth <= 5 else 'MISSED'})")
    print(f"peak RSS (VmHWM): child {child_peak:.0f} MiB, parent {parent_peak:.0f} MiB, "
          f"worker total {child_peak + parent_peak:.0f} MiB")
    suggested = int(child_peak * 1024 * 2)
    configured = celery_config(settings, "redis://unused")["worker_max_memory_per_child"]
    print(f"worker_max_memory_per_child (KiB, checked after each task against the child's RSS): "
          f"storage/broker/queue.py sets {configured:,} (Settings.max_memory_per_child); "
          f"suggested >= 2 x child peak = {suggested:,} for this model. "
          + ("OK: the configured limit leaves headroom." if configured >= suggested else
             "TOO LOW: children would be recycled after every task."))


if __name__ == "__main__":
    main()
