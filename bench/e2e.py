"""End-to-end throughput: bare model vs the full pipeline, in one run, on one machine.

(a) bare: ``load_tagger(model).annotate`` over the corpus in this process (torch threads =
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

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    base_parser, build_corpus, corpus_chars, cpu_note, embedded_redis, median, resolve_model, shiti,
    start_worker, table, wait_job, write_jsonl,
)


def bare_throughput(model: str, texts: list[str], *, threads: int) -> tuple[float, float]:
    """``(seconds, load_seconds)`` of one in-process pass (model loaded + warmed up first)."""
    from worker.pipeline import WARMUP_TEXT, set_threads
    from worker.model.tagger import load_tagger

    set_threads(threads)
    t0 = time.perf_counter()
    tagger = _TAGGERS.get(model)
    if tagger is None:
        tagger = _TAGGERS[model] = load_tagger(model)
        tagger.annotate([WARMUP_TEXT])
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    tagger.annotate(texts)
    return time.perf_counter() - t0, load


_TAGGERS: dict[str, object] = {}


def pipeline_run(model: str, corpus: Path, *, root: Path, threads: int, profile: Path | None) -> dict[str, float]:
    """One pipeline pass in a fresh data dir; returns its timings."""
    from storage.db import dispose_all
    from storage.settings import Settings

    data = root / f"data-{time.monotonic_ns()}"
    settings = Settings(data_dir=data, model=model, threads=threads)
    env = {**os.environ, "SHITI_DATA_DIR": str(data), "SHITI_MODEL": model, "SHITI_THREADS": str(threads)}
    with embedded_redis(data) as url:
        settings = settings.replace(redis_url=url)
        worker = start_worker(settings, name="e2e@bench", logdir=root)
        spy = _py_spy(worker.child(), profile) if profile else None
        try:
            t0 = time.perf_counter()
            out = shiti("submit", str(corpus), "--json", env=env)
            t_submit = time.perf_counter() - t0
            job_id = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
            final = wait_job(settings, job_id)
            wall = time.perf_counter() - t0
        finally:
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its flame graph and exits
                spy.wait(30)
            worker.stop()
            dispose_all()
    if final["state"] != "succeeded":
        raise RuntimeError(f"job ended {final['state']}: {final}")
    from datetime import datetime

    def ts(s: str) -> float:
        return datetime.fromisoformat(s).timestamp()

    return {"wall": wall, "submit_cmd": t_submit, "ready": worker.ready_s,
            "worker_span": ts(final["finished_at"]) - ts(final["started_at"]),
            "done": final["done"]}


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
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: settings default)")
    p.add_argument("--profile", action="store_true",
                   help="sample the worker child with py-spy (writes e2e-worker-N.speedscope.json here)")
    args = p.parse_args()
    from storage.settings import Settings

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
            bare_s, load_s = bare_throughput(model, texts, threads=threads)
            prof = root / f"e2e-worker-{run}.speedscope.json" if args.profile else None
            pipe = pipeline_run(model, corpus, root=root, threads=threads, profile=prof)
            a, b = chars / bare_s, chars / pipe["wall"]
            results.append({"a": a, "b": b, "ratio": b / a, **pipe, "bare_s": bare_s})
            rows.append([f"run {run + 1}", a, b, b / a, pipe["wall"], pipe["worker_span"], pipe["submit_cmd"],
                         pipe["ready"]])
            print(f"run {run + 1}: bare {a:,.0f} chars/s, pipeline {b:,.0f} chars/s, ratio {b / a:.3f}", flush=True)
        med = [median([r[k] for r in results]) for k in ("a", "b", "ratio", "wall", "worker_span", "submit_cmd", "ready")]
        rows.append(["median", *med])
        print()
        print(f"e2e: model {desc}, {threads} torch thread(s), corpus {len(docs):,} docs / {chars:,} chars "
              f"({sum(1 for d in docs if len(d['text']) >= 2000)} long docs 2k-20k); {cpu_note()}")
        print(table(["", "(a) bare chars/s", "(b) pipeline chars/s", "(b)/(a)", "pipeline s",
                     "first claim->done s", "submit cmd s", "worker ready s"], rows))
        print("goal (b)/(a) >= 0.90:", "MET" if med[2] >= 0.90 else "MISSED")
        if args.profile:
            for f in sorted(root.glob("*.speedscope.json")):
                dest = Path.cwd() / f.name
                shutil.copyfile(f, dest)
                print("profile:", dest)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
