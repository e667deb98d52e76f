"""Serving engines side by side: torch INT8 vs ONNX Runtime INT8, fresh processes, interleaved.

Each run is a fresh process that imports shiti from a given checkout (default: this one; give
another with ``NAME=MODEL@REPO``, e.g. a ``git worktree`` of an older commit to measure the
tagger as it shipped then), loads the model with ``load_tagger`` on ``--threads`` threads
(torch is imported only for torch models), warms it up on one sentence, then scores it on a
BIO file (default: MSRA test) through the production tagger. Rounds are interleaved
(A B A B ...) so machine noise hits every engine alike; the table shows medians.

Columns: ``chars/s`` (tagging only), ``peak MiB`` (the process's VmHWM after tagging: lifetime
peak RSS, imports included), ``ready s`` (process start to warmed-up model), ``F1``, and
whether torch / transformers were imported.

Usage::

    python -W ignore bench/engines.py --run onnx=models/shiti-zh-small \\
        --run torch=../runs/shiti-zh-small-torch@../old-checkout [--runs 3] [--threads 1]
        [--data FILE] [--limit N]
    python -W ignore bench/engines.py --base [--runs 3]   # a random RaNER-base shape (12 x 768),
        # written as a RaNER dir, a torch INT8 artifact and an ONNX artifact (cached under data/bench)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MSRA_TEST = ROOT.parent / "shared" / "data" / "msra" / "test.txt"

CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
repo, model, data, threads, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, repo)
manifest = json.load(open(model + "/manifest.json")) if __import__("os").path.exists(model + "/manifest.json") else {}
if manifest.get("kind") != "shiti-onnx-int8-bert-crf":
    import torch
    torch.set_num_threads(threads)
try:
    from worker.model.serving.loading import load_tagger
    from worker.model.training.evaluate import evaluate
except ImportError:  # a checkout from before worker/model was split (serving/conversion/training)
    from worker.model.tagger import load_tagger
    from worker.model.evaluate import evaluate
import inspect
kwargs = {"threads": threads} if "threads" in inspect.signature(load_tagger).parameters else {}
tagger = load_tagger(model, **kwargs)
tagger.annotate(["新华社北京电，张伟在上海复旦大学参加会议。"])
ready = time.perf_counter() - t0
res = evaluate(tagger, data, limit=int(limit) if limit != "none" else None)
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"chars_per_s": res["chars_per_second"], "f1": res["f1"], "chars": res["chars"],
                  "peak_mib": int(peak) / 1024, "ready_s": ready, "torch": "torch" in sys.modules,
                  "transformers": "transformers" in sys.modules}))
"""


def run_once(repo: Path, model: Path, data: Path, threads: int, limit: int | None) -> dict:
    """One fresh process; its JSON result."""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, str(repo), str(model), str(data),
                           str(threads), str(limit or "none")], capture_output=True, text=True, cwd=repo, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{model} ({repo}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def base_models() -> dict[str, Path]:
    """A random RaNER-base-shape checkpoint as a torch INT8 and an ONNX artifact (cached)."""
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from _common import random_model

    return {"torch-int8-base": random_model("base", fmt="torch"), "onnx-int8-base": random_model("base")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], metavar="NAME=MODEL[@REPO]")
    ap.add_argument("--base", action="store_true", help="add a random RaNER-base shape in both engines")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", type=Path, default=MSRA_TEST)
    ap.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    args = ap.parse_args()
    runs: dict[str, tuple[Path, Path]] = {}
    for spec in args.run:
        name, _, rest = spec.partition("=")
        model, _, repo = rest.partition("@")
        runs[name] = (Path(model).resolve(), Path(repo or ROOT).resolve())
    if args.base:
        runs.update({name: (path, ROOT) for name, path in base_models().items()})
    if not runs:
        raise SystemExit("nothing to run: give --run NAME=MODEL[@REPO] and/or --base")
    results: dict[str, list[dict]] = {name: [] for name in runs}
    for r in range(args.runs):
        for name, (model, repo) in runs.items():
            results[name].append(run_once(repo, model, args.data, args.threads, args.limit))
            print(f"round {r + 1} {name}: {json.dumps(results[name][-1])}", file=sys.stderr)
    print(f"{args.data.name}, {results[next(iter(runs))][0]['chars']} chars, {args.threads} thread(s), "
          f"medians of {args.runs} interleaved fresh processes")
    print(f"{'engine':<18} {'chars/s':>9} {'peak MiB':>9} {'ready s':>8} {'F1':>7}  torch transformers")
    for name, rows in results.items():
        med = {k: statistics.median(x[k] for x in rows) for k in ("chars_per_s", "peak_mib", "ready_s", "f1")}
        print(f"{name:<18} {med['chars_per_s']:9.0f} {med['peak_mib']:9.0f} {med['ready_s']:8.2f} "
              f"{med['f1']:7.4f}  {rows[0]['torch']!s:5} {rows[0]['transformers']}")


if __name__ == "__main__":
    main()
