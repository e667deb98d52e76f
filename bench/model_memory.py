"""Peak RSS, time to ready and speed of a BERT-base-shape tagger: FP32 vs INT8 paths.

Builds a random 12-layer/768/21128-vocab, 13-label BIOES RaNER dir (char mode) and its
INT8 artifact in a temp dir, then measures each loading path in a fresh subprocess
(2 threads, one 1,024-character document, batch of one document):

- ``fp32-classic``: model built with random init, full ``torch.load``, ``load_state_dict``;
- ``int8-after-fp32``: the same, then ``quantize_dynamic`` (what most deployments do);
- ``int8-artifact``: our artifact (meta skeleton + empty INT8 Linear + assigned state);
- ``int8-artifact-onednn``: the same on oneDNN's INT8 kernels (AMX tiles where present).

The first three use fbgemm, torch's default INT8 kernels on x86. The last column is each
mode's speed over ``int8-after-fp32`` measured in the same run (the ratio, not the absolute
rate, is comparable across machines).

All three run the inference network (pure-torch encoder, char ids from ``vocab.txt``), so
no path imports transformers; the table says whether any did.

Prints medians of ``--runs`` runs. Usage: ``python bench/model_memory.py [--runs 3]``.
"""

from __future__ import annotations

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
MODES = ("fp32-classic", "int8-after-fp32", "int8-artifact", "int8-artifact-onednn")
# The INT8 kernel library of each mode: fbgemm is torch's default for dynamic INT8 on x86
# (what most deployments run); onednn also uses AMX tiles where the CPU has them.
ENGINES = {"int8-artifact-onednn": "onednn"}


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _document() -> str:
    sys.path.insert(0, str(REPO))
    from worker.model.training.bio import read_bio

    text = ""
    for sent in read_bio(MSRA):
        text += sent.text
        if len(text) >= 1024:
            return text[:1024]
    return text


def child(mode: str, raner: Path, artifact: Path) -> None:
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(2)
    from worker.model.conversion.artifact import load_artifact, quantize_model
    from worker.model.conversion.checkpoint import LoadedModel, normalize_keys, read_bert_config, read_labels, text_front_end
    from worker.model.serving.tagger import Tagger
    from worker.model.conversion.tagnet import TaggerNet

    imported = time.perf_counter() - T0
    engine = ENGINES.get(mode, "fbgemm")
    if mode.startswith("int8-artifact"):
        loaded = load_artifact(artifact, engine=engine)
    else:
        labels = read_labels(raner)
        model = TaggerNet(read_bert_config(raner), len(labels), pooler=True)
        model.load_state_dict(normalize_keys(torch.load(raner / "pytorch_model.bin", weights_only=True)))
        model.eval()
        if mode == "int8-after-fp32":
            quantize_model(model, engine=engine)
        loaded = LoadedModel(model=model, labels=labels, max_length=512, source=raner, **text_front_end(raner))
    loaded_at = time.perf_counter() - T0
    tagger = Tagger(loaded)
    doc = _document()
    tagger.annotate([doc[:64]])  # warm-up: first call pays one-off kernel setup
    ready = time.perf_counter() - T0
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        tagger.annotate([doc])
        runs.append(time.perf_counter() - start)
    print(json.dumps({"mode": mode, "vmhwm_mib": _vmhwm_mib(), "ready_s": ready, "import_s": imported,
                      "load_s": loaded_at - imported,
                      "chars_per_s": len(doc) / statistics.median(runs), "transformers": "transformers" in sys.modules}))


def build(tmp: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO))
    import torch
    from transformers import BertConfig

    from worker.model.conversion.artifact import quantize
    from worker.model.training.network import BertCrf
    from worker.model.conversion.raner_dir import write_raner_dir

    torch.manual_seed(0)
    labels = ["O"] + [f"{p}-{t}" for t in ("LOC", "ORG", "PER") for p in "BIES"]
    cfg = BertConfig(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512)
    model = BertCrf(cfg, len(labels), pooler=True)
    raner = write_raner_dir(model, labels=labels, vocab=VOCAB, out=tmp / "raner", char_mode=True)
    del model
    artifact = quantize(raner, tmp / "artifact")
    return raner, artifact


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        raner, artifact = build(Path(tmp_name))
        rows: dict[str, list[dict]] = {m: [] for m in MODES}
        for _ in range(runs):
            for mode in MODES:
                proc = subprocess.run([sys.executable, "-W", "ignore", __file__, "--child", mode, str(raner),
                                       str(artifact)], capture_output=True, text=True, timeout=300, check=True)
                rows[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        weights = (artifact / "model.pt").stat().st_size / 2**20
        fp32 = (raner / "pytorch_model.bin").stat().st_size / 2**20
    print(f"BERT-base shape, 13 labels, 2 threads, 1,024-char doc, medians of {runs} runs "
          f"(weights: fp32 {fp32:.0f} MiB, int8 artifact {weights:.0f} MiB)")
    print("ready s = imports (torch + shiti) + model load + one warm-up call, from the child's first line")
    print(f"{'mode':21} {'peak RSS MiB':>13} {'ready s':>8} {'import s':>9} {'load s':>7} {'chars/s':>8} "
          f"{'x int8-after-fp32':>18} transformers")
    keys = ("vmhwm_mib", "ready_s", "import_s", "load_s", "chars_per_s")
    meds = {m: {k: statistics.median(r[k] for r in rows[m]) for k in keys} for m in MODES}
    base = meds["int8-after-fp32"]["chars_per_s"]
    for mode in MODES:
        med = meds[mode]
        print(f"{mode:21} {med['vmhwm_mib']:13.0f} {med['ready_s']:8.2f} {med['import_s']:9.2f} "
              f"{med['load_s']:7.2f} {med['chars_per_s']:8.0f} {med['chars_per_s'] / base:18.2f} "
              f"{rows[mode][0].get('transformers')}")
    for mode in MODES:
        print(f"{mode} per run chars/s:", [round(r["chars_per_s"]) for r in rows[mode]])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main(int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3)
