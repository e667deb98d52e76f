"""Fair share: how long a small job waits when it is submitted behind a huge one.

Real workers on the shipped model and default settings (batch size, high-water mark). Two runs,
each on a fresh pipeline:

- ``alone``: the small job (``--small`` MSRA test sentences) on idle workers;
- ``behind``: the big job (``--big`` sentences, the MSRA test set repeated) is submitted first and
  runs ``--delay`` s, then the small job is submitted (the big one is cancelled once the small
  one is done, to end the run).

Printed per run: the small job's time to its first document done and to done (from its submit),
and its documents; for ``behind`` also how far the big job had got. Dispatch interleaves the
batches of all running jobs of a model (least virtual time first, weighted by ``--priority``),
so the small job waits for the batches already queued, not for the big job.

Usage: ``python -W ignore bench/fair_share.py [--workers 1] [--small 100] [--big 20000] [--delay 10]``
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import base_parser, msra_sentences, pipeline, resolve_model, shiti, table, write_jsonl


def _small_job(pipe: Any, corpus: Path, priority: int) -> dict[str, float]:
    """Submit the small job and time it (seconds from its submit)."""
    from producer.service import job_status

    t0 = time.perf_counter()
    out = shiti("submit", str(corpus), "--json", "--priority", str(priority), env=pipe.env)
    job = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
    first = None
    while True:
        s = job_status(pipe.settings, job)
        now = time.perf_counter() - t0
        if first is None and s["done"] + s["failed"] > 0:
            first = now
        if s["state"] in ("succeeded", "partially_failed", "failed", "cancelled"):
            return {"first": first or now, "done": now, "docs": s["done"]}
        time.sleep(0.05)


def run(model: str, root: Path, *, scenario: str, small: Path, big: Path, args: Any) -> dict[str, Any]:
    from producer.service import cancel_job, job_status

    with pipeline(model, root, workers=args.workers) as pipe:
        big_job = None
        if scenario == "behind":
            out = shiti("submit", str(big), "--json", env=pipe.env)
            big_job = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
            time.sleep(args.delay)
        got: dict[str, Any] = _small_job(pipe, small, args.priority)
        if big_job:
            s = job_status(pipe.settings, big_job)
            got["big_done"] = f"{s['done']:,}/{s['total']:,}"
            cancel_job(pipe.settings, big_job)
        return got


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--small", type=int, default=100, help="documents in the small job")
    p.add_argument("--big", type=int, default=20_000, help="documents in the big job")
    p.add_argument("--delay", type=float, default=10.0, help="seconds the big job runs before the small one")
    p.add_argument("--priority", type=int, default=1, help="the small job's priority")
    args = p.parse_args()
    model, desc = resolve_model(args.model)
    sents = msra_sentences()
    root = Path(tempfile.mkdtemp(prefix="shiti-fair-"))
    try:
        small = write_jsonl([{"id": f"s{i}", "text": t} for i, t in enumerate(sents[-args.small:])], root / "small.jsonl")
        big = write_jsonl([{"id": f"b{i}", "text": sents[i % len(sents)]} for i in range(args.big)], root / "big.jsonl")
        rows = []
        for scenario in ("alone", "behind"):
            r = run(model, root, scenario=scenario, small=small, big=big, args=args)
            print(f"{scenario}: {r}", flush=True)
            rows.append([scenario, f"{r['first']:.1f}", f"{r['done']:.1f}", r["docs"], r.get("big_done", "-")])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nfair share: model {desc}, {args.workers} worker(s), small job {args.small} documents "
          f"(priority {args.priority}), big job {args.big:,} documents submitted {args.delay:g} s before it")
    print(table(["small job", "first result s", "done s", "docs", "big job done at that time"], rows))


if __name__ == "__main__":
    main()
