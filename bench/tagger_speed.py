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

- ``F1``: exact-match micro F1 of what was tagged against the file's tags.

Without ``--model`` a random BERT-CRF of the shipped default model's shape (char mode,
bert-base-chinese vocab, 7 BIO labels) is quantized to an ONNX artifact (``_common.random_model``).
``--run NAME=MODEL[@CHECKOUT]`` (repeatable) measures several side by side, rounds interleaved
(A B A B ...) so the machine's noise hits each alike: CHECKOUT is the repository whose tagger the
child imports (e.g. a ``git worktree`` of an older commit, to measure the code as it shipped then).

Usage::

    python -W ignore bench/tagger_speed.py [--model DIR] [--runs 3] [--docs 64] [--limit N] [--threads 2]
        [--trim-interval SECONDS|off] [--data BIO_FILE]
    python -W ignore bench/tagger_speed.py --run old=models/shiti-zh-small@../old \
        --run new=models/shiti-zh-small --runs 5 --threads 1

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


def child(model: Path, *, docs: int, limit: int | None, threads: int, trim_interval: str | None,
          repo: Path, data: Path) -> None:
    sys.path.insert(0, str(repo))
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(model, threads=threads)
    if trim_interval is not None:
        tagger.trim_interval = None if trim_interval == "off" else float(trim_interval)
    tagger.annotate(["新华社北京电，张伟在上海复旦大学参加会议。"])
    ready = time.perf_counter() - T0
    from worker.model.bio import read_bio
    from worker.model.scoring import bio_spans, score

    sents = list(read_bio(data))[:limit]
    texts = [s.text for s in sents]
    chars = sum(map(len, texts))
    start, cpu = time.perf_counter(), time.process_time()
    found = []
    for i in range(0, len(texts), docs):
        found += tagger.annotate(texts[i : i + docs])
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    n_ent = sum(map(len, found))
    f1 = score([bio_spans(s.tags) for s in sents], [{(e.start, e.end, e.label) for e in ents} for ents in found])["f1"]
    print(json.dumps({"chars": chars, "entities": n_ent, "f1": f1, "chars_per_s": chars / secs, "seconds": secs,
                      "chars_per_cpu_s": chars / cpu,
                      "e2e_chars_per_s": chars / (time.perf_counter() - T0), "vmhwm_mib": _vmhwm_mib(),
                      "ready_s": ready, "transformers": "transformers" in sys.modules}))


def _runs(args: argparse.Namespace) -> list[tuple[str, Path, Path]]:
    """(label, model, checkout) of each measured tagger."""
    if args.run:
        out = []
        for spec in args.run:
            name, _, rest = spec.partition("=")
            model, _, repo = rest.partition("@")
            if not name or not model:
                sys.exit(f"--run {spec!r}: expected NAME=MODEL[@CHECKOUT]")
            out.append((name, Path(model), Path(repo) if repo else REPO))
        return out
    if args.model:
        return [(str(args.model), args.model, REPO)]
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import random_model

    return [("random default-shape char model (ONNX INT8)", random_model("small"), REPO)]


def main(args: argparse.Namespace) -> None:
    runs = _runs(args)
    rows: dict[str, list[dict]] = {label: [] for label, _, _ in runs}
    for _ in range(args.runs):  # interleaved: A B A B ...
        for label, model, repo in runs:
            cmd = [sys.executable, "-W", "ignore", __file__, "--child", str(model), "--docs", str(args.docs),
                   "--threads", str(args.threads), "--repo", str(repo.resolve()), "--data", str(args.data)]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            if args.trim_interval is not None:
                cmd += ["--trim-interval", args.trim_interval]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if proc.returncode:
                sys.exit(proc.stderr)
            rows[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first = rows[runs[0][0]][0]
    print(f"trim interval {args.trim_interval or 'default'}, {args.threads} threads, {args.data.name} "
          f"{first['chars']} chars in calls of {args.docs} sentences, medians of {args.runs} fresh processes"
          + (", interleaved" if len(runs) > 1 else ""))
    print(f"{'run':<24} {'chars/s':>9} {'ratio':>6} {'e2e chars/s':>12} {'chars/cpu-s':>12} {'tag s':>7} "
          f"{'peak MiB':>9} {'ready s':>8} {'entities':>9} {'F1':>7} transformers")
    base = None
    for label, _, _ in runs:
        got = rows[label]
        med = {k: statistics.median(r[k] for r in got) for k in
               ("chars_per_s", "e2e_chars_per_s", "chars_per_cpu_s", "vmhwm_mib", "ready_s", "seconds")}
        base = base or med["chars_per_s"]
        print(f"{label[:24]:<24} {med['chars_per_s']:9.0f} {med['chars_per_s'] / base:6.3f} "
              f"{med['e2e_chars_per_s']:12.0f} {med['chars_per_cpu_s']:12.0f} {med['seconds']:7.2f} "
              f"{med['vmhwm_mib']:9.0f} {med['ready_s']:8.2f} {got[0]['entities']:9d} {got[0]['f1']:7.4f} "
              f"{got[0]['transformers']}")
    for label, _, _ in runs:
        print(f"{label}: per run chars/s", [round(r["chars_per_s"]) for r in rows[label]])


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, default=None, help="ONNX artifact (default: a random one of the default shape)")
    p.add_argument("--run", action="append", default=[], metavar="NAME=MODEL[@CHECKOUT]",
                   help="a tagger to measure (repeatable; rounds interleaved); CHECKOUT: the repository to import")
    p.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, default=MSRA, help="BIO file to tag (default: MSRA test)")
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
        child(ARGS.child, docs=ARGS.docs, limit=ARGS.limit, threads=ARGS.threads, trim_interval=ARGS.trim_interval,
              repo=ARGS.repo, data=ARGS.data)
    else:
        main(ARGS)
