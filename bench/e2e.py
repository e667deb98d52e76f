"""End-to-end throughput: bare model vs the full pipeline, in one run, on one machine.

(a) bare: ``load_tagger(model).annotate`` over the corpus in this process (threads =
    the worker's ``settings.threads``), chars/s;
(b) pipeline: ``shiti submit corpus.jsonl`` -> embedded redis-server -> 1 ``celery worker``
    (prefork, 1 child, the model loaded before the clock starts) -> SQLite, timed from the
    submit command's start until the job is terminal (status polled every 50 ms).

The ratio (b)/(a) is computed per run from the same run, then the median is printed. Worker
startup (process start + model load + warm-up) is reported separately, not in (b).

Corpus: the MSRA test sentences as documents plus 12 documents of 2k-20k characters made
by concatenating them. ``--fraction 0.1`` for a quick smoke run.

Usage: ``python bench/e2e.py [--model DIR] [--runs 3] [--fraction 1.0] [--profile]``
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    base_parser,
    build_corpus,
    corpus_chars,
    cpu_note,
    median,
    pipeline,
    resolve_model,
    table,
    write_jsonl,
)


def bare_throughput(model: str, texts: list[str], *, threads: int) -> tuple[float, float, float]:
    """``(seconds, cpu_seconds, load_seconds)`` of one in-process pass (model loaded and warmed
    up first)."""
    from worker.tagger.loading import load_tagger
    from worker.pipeline import WARMUP_TEXT

    t0 = time.perf_counter()
    tagger = _TAGGERS.get(model)
    if tagger is None:
        tagger = _TAGGERS[model] = load_tagger(model, threads=threads)
        tagger.annotate([WARMUP_TEXT])
    load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    tagger.annotate(texts)
    return time.perf_counter() - t0, time.process_time() - c0, load


_TAGGERS: dict[str, object] = {}


def pipeline_run(model: str, corpus: Path, *, root: Path, threads: int, profile: Path | None) -> dict[str, float]:
    """One pipeline pass with a fresh worker and data dir; returns its timings."""
    with pipeline(model, root, workers=1, threads=threads) as pipe:
        spy = _py_spy(pipe.workers[0].child(), profile) if profile else None
        try:
            res = pipe.submit_and_wait(corpus)
        finally:
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its profile and exits
                spy.wait(60)
        return {**res, "ready": pipe.workers[0].ready_s}


def _py_spy(pid: int, out: Path) -> "subprocess.Popen[bytes]":
    """Sample the worker child with py-spy (``pip install py-spy``) into a speedscope file."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return subprocess.Popen([exe, "record", "-p", str(pid), "-r", "200", "-f", "speedscope", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the corpus to use")
    p.add_argument("--threads", type=int, default=None, help="model threads (default: settings default)")
    p.add_argument("--profile", action="store_true",
                   help="sample the worker child with py-spy (writes e2e-worker-N.speedscope.json here)")
    args = p.parse_args()
    from storage.core.settings import Settings

    threads = args.threads or Settings().threads
    model, desc = resolve_model(args.model)
    docs = build_corpus(fraction=args.fraction)
    texts = [d["text"] for d in docs]
    chars = corpus_chars(docs)
    root = Path(tempfile.mkdtemp(prefix="shiti-e2e-"))
    corpus = write_jsonl(docs, root / "corpus.jsonl")
    rows = []
    results = []
    try:
        for run in range(args.runs):
            bare_s, bare_cpu, _ = bare_throughput(model, texts, threads=threads)
            prof = root / f"e2e-worker-{run}.speedscope.json" if args.profile else None
            pipe = pipeline_run(model, corpus, root=root, threads=threads, profile=prof)
            a, b = chars / bare_s, chars / pipe["wall"]
            cpu_ratio = bare_cpu / pipe["cpu"]
            results.append({"a": a, "b": b, "ratio": b / a, "cpu_ratio": cpu_ratio, **pipe, "bare_s": bare_s,
                            "bare_cpu": bare_cpu})
            rows.append([f"run {run + 1}", a, b, b / a, bare_cpu, pipe["cpu"], cpu_ratio, pipe["wall"],
                         pipe["worker_span"], pipe["submit_cmd"], pipe["ready"]])
            print(f"run {run + 1}: bare {a:,.0f} chars/s, pipeline {b:,.0f} chars/s, ratio {b / a:.3f}; "
                  f"CPU s bare {bare_cpu:.1f} pipeline {pipe['cpu']:.1f}, ratio {cpu_ratio:.3f}", flush=True)
        med = [median([r[k] for r in results]) for k in ("a", "b", "ratio", "bare_cpu", "cpu", "cpu_ratio", "wall",
                                                          "worker_span", "submit_cmd", "ready")]
        rows.append(["median", *med])
        print()
        print(f"e2e: model {desc}, {threads} thread(s), corpus {len(docs):,} docs / {chars:,} chars "
              f"({sum(1 for d in docs if len(d['text']) >= 2000)} long docs 2k-20k); {cpu_note()}")
        print(table(["", "(a) bare chars/s", "(b) pipeline chars/s", "(b)/(a) wall", "(a) CPU s", "(b) CPU s",
                     "(b)/(a) CPU", "pipeline s", "first claim->done s", "submit cmd s", "worker ready s"], rows))
        print("(b) CPU = submit command + redis-server + worker parent and child, submit -> done. The CPU "
              "ratio is the wall ratio of an idle machine when the model runs 1 thread; it ignores idle gaps.")
        parts = {k: median([r["cpu_parts"][k] for r in results]) for k in results[0]["cpu_parts"]}
        print("(b) CPU s by process (median): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
              + f"; (a) bare {med[3]:.2f}")
        print("goal (b)/(a) >= 0.95 (wall):", "MET" if med[2] >= 0.95 else "MISSED",
              "| (CPU):", "MET" if med[5] >= 0.95 else "MISSED")
        if args.profile:
            for f in sorted(root.glob("*.speedscope.json")):
                dest = Path.cwd() / f.name
                shutil.copyfile(f, dest)
                print("profile:", dest)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
