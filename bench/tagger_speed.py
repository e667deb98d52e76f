"""Worker-shaped tagging speed and memory on the MSRA test set.

Each run is a fresh process (``torch.set_num_threads(2)``, inter-op threads 1) that loads
the model with ``load_tagger``, warms it up on one sentence ("ready" = process start to
here, imports included), then tags every MSRA test sentence in calls of ``--docs``
sentences (a worker task's batch) and reports:

- ``chars/s``: characters tagged per second of tagging;
- ``e2e chars/s``: characters per second of the whole process life (start-up included);
- ``chars/cpu-s``: characters per CPU-second of tagging (all threads; on a shared machine
  this moves less than wall-clock numbers do);
- ``peak MiB``: the process's VmHWM after tagging (lifetime peak RSS);
- ``ready s`` and whether ``transformers`` was imported.

Without ``--model`` a random 6-layer, hidden-384, 12-head, FFN-1536 BERT-CRF (char mode,
bert-base-chinese vocab, 7 BIO labels) is written as a RaNER dir plus its INT8 artifact in
a temp dir (the shape of the shipped default model).

Usage::

    python -W ignore bench/tagger_speed.py [--model DIR] [--runs 3] [--precision int8|fp32|bf16]
        [--docs 64] [--limit N] [--threads 2] [--engine fbgemm|onednn]
        [--trim-interval SECONDS|off]

``--trim-interval`` overrides how often the tagger gives its freed heap back between batches
(``Tagger.trim_interval``, default ``worker/model/serving/tagger.py: TRIM_INTERVAL``; ``0`` = after every
batch, ``off`` = never).

``--precision`` applies to a RaNER dir (an artifact is always INT8); without ``--model``
it picks the generated artifact (int8) or the generated RaNER dir (fp32/bf16).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
VOCAB = REPO.parent / "shared" / "data" / "vocab" / "bert-base-chinese-vocab.txt"
MSRA = REPO.parent / "shared" / "data" / "msra" / "test.txt"
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: Path, *, precision: str, docs: int, limit: int | None, threads: int,
          engine: str, trim_interval: str | None) -> None:
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    from worker.model.serving.loading import load_tagger

    kwargs: dict = {"int8": precision == "int8", "engine": engine}
    if precision == "bf16":
        kwargs["bf16"] = True
    tagger = load_tagger(model, **kwargs)
    if trim_interval is not None:
        tagger.trim_interval = None if trim_interval == "off" else float(trim_interval)
    tagger.annotate(["新华社北京电，张伟在上海复旦大学参加会议。"])
    ready = time.perf_counter() - T0
    from worker.model.training.bio import read_bio

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


def build(tmp: Path) -> tuple[Path, Path]:
    """A random default-shape RaNER dir and its INT8 artifact."""
    sys.path.insert(0, str(REPO))
    import torch
    from transformers import BertConfig

    from worker.model.conversion.artifact import quantize
    from worker.model.training.network import BertCrf
    from worker.model.conversion.raner_dir import write_raner_dir

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=21128, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    model = BertCrf(cfg, len(LABELS))
    with torch.no_grad():  # a sharper head so a random model emits some entities
        model.linear.weight.mul_(8.0)
    raner = write_raner_dir(model, labels=LABELS, vocab=VOCAB, out=tmp / "raner", char_mode=True)
    return raner, quantize(raner, tmp / "artifact")


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        if args.model:
            model, label = args.model, str(args.model)
        else:
            raner, artifact = build(Path(tmp_name))
            model = artifact if args.precision == "int8" else raner
            label = "random 6x384 char model (" + ("INT8 artifact" if args.precision == "int8" else "RaNER dir") + ")"
        rows = []
        for _ in range(args.runs):
            cmd = [sys.executable, "-W", "ignore", __file__, "--child", str(model), "--precision", args.precision,
                   "--docs", str(args.docs), "--threads", str(args.threads)]
            if args.engine:
                cmd += ["--engine", args.engine]
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
    print(f"{label}, precision {args.precision}, engine {args.engine or 'auto'}, "
          f"trim interval {args.trim_interval or 'default'}, {args.threads} threads, MSRA test {rows[0]['chars']} chars "
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
    p.add_argument("--model", type=Path, default=None, help="artifact or RaNER dir (default: random 6x384)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--precision", choices=("int8", "fp32", "bf16"), default="int8")
    p.add_argument("--docs", type=int, default=64, help="sentences per annotate() call")
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engine", default="", help="INT8 kernels: fbgemm (default), onednn")
    p.add_argument("--trim-interval", default=None,
                   help="seconds between heap trims within a call (0: every batch; off: never; default: the tagger's)")
    return p.parse_args()


if __name__ == "__main__":
    ARGS = _parse()
    if ARGS.child:
        child(ARGS.child, precision=ARGS.precision, docs=ARGS.docs, limit=ARGS.limit, threads=ARGS.threads,
              engine=ARGS.engine, trim_interval=ARGS.trim_interval)
    else:
        main(ARGS)
