"""Worker-shaped tagging speed and memory on the MSRA test set.

Each run is a fresh process that loads the ONNX artifact with ``load_tagger`` (``--threads``
onnxruntime intra-op threads, as a worker does), warms it up on one sentence ("ready" = process start to
here, imports included), then tags every MSRA test sentence in calls of ``--docs``
sentences (a worker task's batch) and reports:

- ``chars/s``: characters tagged per second of tagging;
- ``e2e chars/s``: characters per second of the whole process life (start-up included);
- ``chars/cpu-s``: characters per CPU-second of tagging (all threads; on a shared machine
  this moves less than wall-clock numbers do);
- ``peak MiB``: the process's VmHWM after tagging (lifetime peak RSS);
- ``ready s`` and whether ``transformers`` was imported.

Without ``--model`` a random BERT-CRF of the shipped default model's shape (char mode,
bert-base-chinese vocab, 7 BIO labels) is quantized to an ONNX artifact (``_common.random_model``).

Usage::

    python -W ignore bench/tagger_speed.py [--model DIR] [--runs 3] [--docs 64] [--limit N] [--threads 2]
        [--trim-interval SECONDS|off]

``--trim-interval`` overrides how often the tagger gives its freed heap back between batches
(``Tagger.trim_interval``, default ``worker/tagger/tagger.py: TRIM_INTERVAL``; ``0`` = after every
batch, ``off`` = never).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
MSRA = REPO.parent / "shared" / "data" / "msra" / "test.txt"


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: Path, *, docs: int, limit: int | None, threads: int, trim_interval: str | None) -> None:
    sys.path.insert(0, str(REPO))
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(model, threads=threads)
    if trim_interval is not None:
        tagger.trim_interval = None if trim_interval == "off" else float(trim_interval)
    tagger.annotate(["新华社北京电，张伟在上海复旦大学参加会议。"])
    ready = time.perf_counter() - T0
    from worker.model.bio import read_bio

    texts = [s.text for s in read_bio(MSRA)][:limit]
    chars = sum(map(len, texts))
    start, cpu = time.perf_counter(), time.process_time()
    n_ent = 0
    for i in range(0, len(texts), docs):
        n_ent += sum(map(len, tagger.annotate(texts[i : i + docs])))
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"chars": chars, "entities": n_ent, "chars_per_s": chars / secs, "seconds": secs,
                      "chars_per_cpu_s": chars / cpu,
                      "e2e_chars_per_s": chars / (time.perf_counter() - T0), "vmhwm_mib": _vmhwm_mib(),
                      "ready_s": ready, "transformers": "transformers" in sys.modules}))


def main(args: argparse.Namespace) -> None:
    if args.model:
        model, label = args.model, str(args.model)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from _common import random_model

        model, label = random_model("small"), "random default-shape char model (ONNX INT8)"
    rows = []
    for _ in range(args.runs):
        cmd = [sys.executable, "-W", "ignore", __file__, "--child", str(model), "--docs", str(args.docs),
               "--threads", str(args.threads)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        if args.trim_interval is not None:
            cmd += ["--trim-interval", args.trim_interval]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode:
            sys.exit(proc.stderr)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in rows) for k in
           ("chars_per_s", "e2e_chars_per_s", "chars_per_cpu_s", "vmhwm_mib", "ready_s", "seconds")}
    print(f"{label}, trim interval {args.trim_interval or 'default'}, {args.threads} threads, MSRA test {rows[0]['chars']} chars "
          f"in calls of {args.docs} sentences, medians of {args.runs} fresh processes")
    print(f"{'chars/s':>9} {'e2e chars/s':>12} {'chars/cpu-s':>12} {'tag s':>7} {'peak MiB':>9} {'ready s':>8} "
          f"{'entities':>9} transformers")
    print(f"{med['chars_per_s']:9.0f} {med['e2e_chars_per_s']:12.0f} {med['chars_per_cpu_s']:12.0f} "
          f"{med['seconds']:7.2f} {med['vmhwm_mib']:9.0f} "
          f"{med['ready_s']:8.2f} {rows[0]['entities']:9d} {rows[0]['transformers']}")
    print("per run chars/s:", [round(r["chars_per_s"]) for r in rows])


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, default=None, help="ONNX artifact (default: a random one of the default shape)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--docs", type=int, default=64, help="sentences per annotate() call")
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--trim-interval", default=None,
                   help="seconds between heap trims within a call (0: every batch; off: never; default: the tagger's)")
    return p.parse_args()


if __name__ == "__main__":
    ARGS = _parse()
    if ARGS.child:
        child(ARGS.child, docs=ARGS.docs, limit=ARGS.limit, threads=ARGS.threads, trim_interval=ARGS.trim_interval)
    else:
        main(ARGS)
