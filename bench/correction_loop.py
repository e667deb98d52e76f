"""The correction loop measured: 200 documents of a domain the shipped model is weak on (CLUENER
web text, or Weibo posts) go out as Label Studio tasks, come back "annotated" (their gold tags as the annotator's
result), are read by the same importer `shiti data import` uses, fine-tune the shipped artifact
(`shiti model train --init models/shiti-zh-small`), are quantized and calibrated, and the result
is scored beside the shipped model on held-back dev sentences of that domain (odd ones; even ones
select the checkpoint) and on two other domains' dev splits (what the fine-tune costs elsewhere).

    python -W ignore bench/correction_loop.py [--domain cluener|weibo] [--n 200] [--epochs 8] [--work ../runs/loop]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT.parent / "runs" / "data"
SHIPPED = ROOT / "models" / "shiti-zh-small"


def _sentences(path: Path) -> list[tuple[str, list[tuple[int, int, str]]]]:
    from producer.annotation.bio import spans_of
    from worker.model.bio import read_bio

    return [(s.text, spans_of(s.tags)) for s in read_bio(path)]


def _traditional(sents: list[tuple[str, list[tuple[int, int, str]]]]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    import opencc

    s2t = opencc.OpenCC("s2t").convert
    out = [(s2t(text), spans) for text, spans in sents]
    return [(t, spans) for (t, spans), (orig, _) in zip(out, sents) if len(t) == len(orig)]


def _write_bio(path: Path, sents: list[tuple[str, list[tuple[int, int, str]]]]) -> None:
    from producer.annotation.bio import lines

    path.write_text("".join(line + "\n" for text, spans in sents for line in lines(text, spans)), encoding="utf-8")


def _shiti(*args: str) -> str:
    out = subprocess.run([str(Path(sys.executable).with_name("shiti")), *args], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"shiti {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def _f1(model: Path, data: Path, limit: int | None = None) -> float:
    args = ["model", "evaluate", "--model", str(model), "--data", str(data), "--json", "--threads", "2"]
    if limit:
        args += ["--limit", str(limit)]
    found = json.loads(_shiti(*args))
    return float(found["f1"] if "f1" in found else found["files"][0]["f1"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", choices=["weibo", "cluener", "cluener-traditional"], default="cluener",
                    help="weibo: Weibo train / dev; cluener: CLUENER train / the dev carved from it "
                         "(scripts/dev_splits.py); cluener-traditional: the same in Traditional script (OpenCC "
                         "s2t, sentences whose length changes dropped), scored without the fold: text the model "
                         "never saw in training.")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--epochs", type=float, default=8.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=ROOT.parent / "runs" / "loop")
    ap.add_argument("--limit", type=int, default=1000, help="Sentences of the other domains' dev files.")
    args = ap.parse_args()
    from producer.annotation import label_studio
    from producer.corrections import LINEAGE_FORMAT, read_corrections, write_training_file

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    train_file, dev_file = ((DATA / "weibo" / "train.txt", DATA / "weibo" / "dev.txt") if args.domain == "weibo"
                            else (RUNS / "cluener-train.txt", RUNS / "cluener-dev.txt"))
    work = work / args.domain
    work.mkdir(parents=True, exist_ok=True)
    train = _sentences(train_file)
    if args.domain.endswith("-traditional"):
        train = _traditional(train)
    picked = random.Random(args.seed).sample(range(len(train)), args.n)
    # Out as Label Studio tasks, back with the gold tags as each task's annotation.
    tasks = []
    for i in picked:
        text, spans = train[i]
        ents = [{"start": s, "end": e, "label": lab, "text": text[s:e], "score": 1.0} for s, e, lab in spans]
        task = label_studio.task(text, f"{args.domain}-{i}", [], model_version="-", job="bench")
        task["id"] = i
        task["annotations"] = [{"id": i, "result": label_studio.task(text, "", ents, model_version="-", job="")[
            "predictions"][0]["result"], "was_cancelled": False}]
        tasks.append(task)
    export = json.dumps(tasks, ensure_ascii=False).encode("utf-8")
    found, _ = read_corrections(export, "label-studio", ["PER", "LOC", "ORG"])
    corrections = work / "corrections.txt"
    write_training_file(corrections, [(c.text, c.spans) for c in found],
                        {"format": LINEAGE_FORMAT, "tool": "label-studio", "documents": len(found),
                         "export": f"bench: {args.domain} train sample", "job": None, "gold_job": None})
    dev = _sentences(dev_file)
    if args.domain.endswith("-traditional"):
        dev = _traditional(dev)
    select, check = work / "dev-even.txt", work / "dev-odd.txt"
    _write_bio(select, dev[0::2])
    _write_bio(check, dev[1::2])
    run = work / "run"
    t0 = time.time()
    if not (run / "best").is_dir():
        _shiti("model", "train", "--init", str(SHIPPED), "--train", str(corrections), "--dev", str(select),
               "--out", str(run), "--epochs", str(args.epochs), "--lr", str(args.lr), "--head-lr", str(args.lr * 10),
               "--warmup", "10", "--eval-every", "10", "--ckpt-every", "100000", "--seed", str(args.seed))
    trained = time.time() - t0
    artifact = work / "artifact"
    if not (artifact / "manifest.json").is_file():
        _shiti("model", "quantize", str(run / "best"), "--out", str(artifact), "--calibration", str(corrections),
               "--max-length", "256")
        _shiti("model", "calibrate", str(artifact), "--data", str(select))
    other = [("MSRA dev", RUNS / "msra-dev.txt"), ("Weibo dev", DATA / "weibo" / "dev.txt"),
             ("CLUENER dev", RUNS / "cluener-dev.txt")]
    rows = [(f"{args.domain} dev, odd sentences (held back; {len(dev[1::2])})", check, None)] + [
        (name, path, args.limit) for name, path in other if args.domain.split("-")[0] not in name.lower()]
    print(f"{len(found)} corrected {args.domain} documents ({sum(len(c.spans) for c in found)} entities), "
          f"fine-tune {trained:.0f} s on this machine")
    print("| split | shipped | fine-tuned on the corrections | change |")
    print("|---|---:|---:|---:|")
    for name, path, limit in rows:
        a, b = _f1(SHIPPED, path, limit), _f1(artifact, path, limit)
        print(f"| {name} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")


if __name__ == "__main__":
    main()
