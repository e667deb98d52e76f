"""Recovery at default settings: what a fault costs a running job.

Two workers (prefork, one child each) on the shipped model and default settings (lease,
heartbeat, reconcile interval, visibility timeout, database retry backoff) tag the e2e corpus
(``--repeat`` times, fresh ids); ``--at`` seconds after the submit one fault hits:

- ``child``: SIGKILL worker 0's pool child (Celery requeues the batch; the same message takes its
  leases back);
- ``worker``: SIGKILL worker 0's whole process group (its unacked message is stuck until the
  visibility timeout, so the lease and the reconciler bring the batch back);
- ``sigterm``: SIGTERM to worker 0's parent, as ``docker stop`` sends (the batch saves what is done
  and releases the rest; ``exit s`` is how long the worker took to leave);
- ``redis``: the broker stopped (SIGTERM, AOF flushed) and started again ``--redis-down`` s later;
- ``database``: the SQLite file write-locked by another process for ``--db-down`` s.

Printed per fault: the job's wall time against a clean run, the extra seconds, ``rerun s`` (from a
kill to the first claim of a second attempt of the killed batch) and ``progress s`` (from the end
of the fault -- the kill, or the service coming back -- to the next document done).

Usage: ``python -W ignore bench/recovery.py [--model DIR] [--fraction 1] [--repeat 2] [--at 8]``
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import base_parser, build_corpus, pipeline, resolve_model, shiti, table, wait_job, write_jsonl

FAULTS = ("none", "child", "worker", "sigterm", "redis", "database")


def _rerun_at(settings: Any, job_id: str) -> float | None:
    from sqlalchemy import func, select

    from storage.sql.db import get_database
    from storage.sql.schema import document

    with get_database(settings).read() as conn:
        got = conn.execute(select(func.min(document.c.updated_at)).where(
            document.c.job_id == job_id, document.c.attempts >= 2)).scalar()
    return float(got) if got is not None else None


class DoneWatch(threading.Thread):
    """Polls the job's done counter; ``first_after(t)``: when it first rose after wall time ``t``."""

    def __init__(self, settings: Any, job_id: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.job_id, self.stopped = settings, job_id, threading.Event()
        self.rises: list[float] = []

    def run(self) -> None:
        from producer.service import job_status
        from storage.core.errors import TransientError

        last = 0
        while not self.stopped.wait(0.1):
            try:
                done = int(job_status(self.settings, self.job_id)["done"])
            except TransientError:  # the database is away
                continue
            if done > last:
                self.rises.append(time.time())
                last = done

    def first_after(self, t: float) -> float | None:
        return next((r for r in self.rises if r > t), None)


def _inject(fault: str, pipe: Any, *, redis_down: float, db_down: float) -> tuple[float, dict[str, float]]:
    """Apply ``fault``; returns the wall time the fault ended and extra measurements."""
    from storage.broker.redis_server import start_redis, stop_redis

    victim = pipe.workers[0]
    if fault == "child":
        os.kill(victim.child(), signal.SIGKILL)
    elif fault == "worker":
        os.killpg(victim.pid, signal.SIGKILL)
    elif fault == "sigterm":
        t = time.monotonic()
        os.kill(victim.pid, signal.SIGTERM)
        victim.proc.wait(120)
        return time.time(), {"exit": time.monotonic() - t}
    elif fault == "redis":
        stop_redis(pipe.redis)
        time.sleep(redis_down)
        pipe.redis = start_redis(pipe.redis.dir, port=pipe.redis.port)
    elif fault == "database":
        lock = sqlite3.connect(pipe.settings.sqlalchemy_url.removeprefix("sqlite:///"), isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        time.sleep(db_down)
        lock.rollback()
        lock.close()
    return time.time(), {}


def run(model: str, corpus: Path, root: Path, fault: str, args: Any) -> dict[str, float]:
    """One job with ``fault`` injected ``args.at`` s after the submit."""
    with pipeline(model, root, workers=2) as pipe:
        t0 = time.perf_counter()
        out = shiti("submit", str(corpus), "--json", env=pipe.env)
        job = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
        watch = DoneWatch(pipe.settings, job)
        watch.start()
        ended, extra = None, {}
        if fault != "none":
            time.sleep(max(0.0, args.at - (time.perf_counter() - t0)))
            ended, extra = _inject(fault, pipe, redis_down=args.redis_down, db_down=args.db_down)
        final = wait_job(pipe.settings, job, poll=0.2, timeout=3600)
        wall = time.perf_counter() - t0
        watch.stopped.set()
        assert final["state"] == "succeeded" and final["failed"] == 0, final
        rerun = _rerun_at(pipe.settings, job) if fault in ("child", "worker") else None
        progress = watch.first_after(ended) if ended else None
        nan = float("nan")
        return {"wall": wall, "rerun": rerun - ended if ended and rerun else nan,
                "progress": progress - ended if progress and ended else nan,
                "exit": extra.get("exit", nan), "done": final["done"]}


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the MSRA test sentences")
    p.add_argument("--repeat", type=int, default=2, help="copies of the corpus in the job (fresh ids)")
    p.add_argument("--at", type=float, default=8.0, help="seconds after submit to inject the fault")
    p.add_argument("--redis-down", type=float, default=5.0, help="seconds the broker stays down")
    p.add_argument("--db-down", type=float, default=30.0, help="seconds the database stays locked")
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {FAULTS}")
    args = p.parse_args()
    model, desc = resolve_model(args.model)
    base = build_corpus(fraction=args.fraction)
    docs = [{"id": f"r{k}-{d['id']}", "text": d["text"]} for k in range(args.repeat) for d in base]
    faults = ["none"] + [f for f in args.faults.split(",") if f and f != "none"]
    root = Path(tempfile.mkdtemp(prefix="shiti-recovery-"))
    try:
        corpus = write_jsonl(docs, root / "corpus.jsonl")
        rows, clean = [], None
        for fault in faults:
            r = run(model, corpus, root, fault, args)
            clean = clean or r["wall"]
            rows.append([fault, f"{r['wall']:.1f}", f"{r['wall'] - clean:+.1f}", f"{r['rerun']:.1f}",
                         f"{r['progress']:.1f}", f"{r['exit']:.1f}", r["done"]])
            print(f"{fault}: {r}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nrecovery at default settings: model {desc}, 2 workers x 1 thread, {len(docs):,} documents, "
          f"fault at {args.at:g} s (redis down {args.redis_down:g} s, database locked {args.db_down:g} s)")
    print(table(["fault", "job wall s", "extra s", "rerun s", "progress s", "exit s", "done"], rows))


if __name__ == "__main__":
    main()
