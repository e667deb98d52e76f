"""Recovery at default settings: what a fault costs a running job.

Two workers (prefork, one child each) on the shipped model and default settings (lease,
heartbeat, reconcile interval, visibility timeout) tag the e2e corpus; ``--at`` seconds after the
submit one fault is injected into worker 0:

- ``child``: SIGKILL its pool child (Celery requeues the batch; the same message takes its leases
  back);
- ``worker``: SIGKILL its whole process group (parent and child: its unacked message is stuck
  until the visibility timeout, so the lease and the reconciler must bring the batch back).

Printed per fault: the job's wall time against a clean run of the same corpus, the extra seconds,
and ``rerun s``: from the kill to the first claim of a second attempt (the killed batch running
again). Faults not covered yet: Redis restart, database outage.

Usage: ``python -W ignore bench/recovery.py [--model DIR] [--fraction 0.5] [--at 8]``
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from _common import base_parser, build_corpus, pipeline, resolve_model, shiti, table, wait_job, write_jsonl


def _rerun_at(settings, job_id: str) -> float | None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from storage.db import get_database
    from storage.schema import document

    with get_database(settings).read() as conn:
        got = conn.execute(select(func.min(document.c.updated_at)).where(
            document.c.job_id == job_id, document.c.attempts >= 2)).scalar()
    return float(got) if got is not None else None


def run(model: str, corpus: Path, root: Path, fault: str, at: float) -> dict[str, float]:
    """One job with ``fault`` (``none``, ``child``, ``worker``) injected ``at`` s after submit."""
    with pipeline(model, root, workers=2) as pipe:
        t0 = time.perf_counter()
        out = shiti("submit", str(corpus), "--json", env=pipe.env)
        job = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
        killed = None
        if fault != "none":
            time.sleep(max(0.0, at - (time.perf_counter() - t0)))
            victim = pipe.workers[0]
            if fault == "child":
                os.kill(victim.child(), signal.SIGKILL)
            else:
                os.killpg(victim.pid, signal.SIGKILL)
            killed = time.time()
        final = wait_job(pipe.settings, job, poll=0.2, timeout=3600)
        wall = time.perf_counter() - t0
        assert final["state"] == "succeeded", final
        rerun = _rerun_at(pipe.settings, job)
        return {"wall": wall, "rerun": (rerun - killed) if killed and rerun else float("nan"),
                "done": final["done"]}


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--fraction", type=float, default=0.5, help="share of the MSRA test sentences")
    p.add_argument("--at", type=float, default=8.0, help="seconds after submit to inject the fault")
    args = p.parse_args()
    model, desc = resolve_model(args.model)
    docs = build_corpus(fraction=args.fraction)
    root = Path(tempfile.mkdtemp(prefix="shiti-recovery-"))
    try:
        corpus = write_jsonl(docs, root / "corpus.jsonl")
        rows, clean = [], None
        for fault in ("none", "child", "worker"):
            r = run(model, corpus, root, fault, args.at)
            clean = clean or r["wall"]
            rows.append([fault, f"{r['wall']:.1f}", f"{r['wall'] - clean:+.1f}", f"{r['rerun']:.1f}", r["done"]])
            print(f"{fault}: {r}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nrecovery at default settings: model {desc}, 2 workers x 1 thread, {len(docs):,} documents, "
          f"fault at {args.at:g} s")
    print(table(["fault", "job wall s", "extra s", "rerun s", "done"], rows))


if __name__ == "__main__":
    main()
