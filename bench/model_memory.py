"""Peak RSS, time to ready and speed of a BERT-base-shape tagger: the usual torch paths vs the
ONNX INT8 artifact workers serve.

Builds a random 12-layer/768/21128-vocab, 13-label BIOES RaNER dir (char mode) and its ONNX
INT8 artifact in a temp dir, then measures each loading path in a fresh subprocess (2 threads,
one 1,024-character document, batch of one document):

- ``fp32-classic``: torch model built with random init, full ``torch.load``, ``load_state_dict``;
- ``int8-after-fp32``: the same, then ``quantize_dynamic`` (fbgemm; what most deployments do,
  and the article's recipe);
- ``onnx-int8-artifact``: what a worker loads (onnxruntime, no torch).

The last column is each mode's speed over ``int8-after-fp32`` measured in the same run (the
ratio, not the absolute rate, is comparable across machines). The table says whether a path
imported transformers or torch.

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
MODES = ("fp32-classic", "int8-after-fp32", "onnx-int8-artifact")


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _document() -> str:
    sys.path.insert(0, str(REPO))
    from worker.model.bio import read_bio

    text = ""
    for sent in read_bio(MSRA):
        text += sent.text
        if len(text) >= 1024:
            return text[:1024]
    return text


def child(mode: str, raner: Path, artifact: Path) -> None:
    sys.path.insert(0, str(REPO))
    if mode == "onnx-int8-artifact":
        from worker.tagger.loading import load_tagger

        imported = time.perf_counter() - T0
        tagger = load_tagger(artifact, threads=2)
    else:
        import torch

        torch.set_num_threads(2)
        from worker.model.artifact import quantize_model
        from worker.model.checkpoint import LoadedModel, normalize_keys, read_bert_config, read_labels, text_front_end
        from worker.model.tagnet import TaggerNet
        from worker.model.torch_tagger import torch_tagger

        imported = time.perf_counter() - T0
        labels = read_labels(raner)
        model = TaggerNet(read_bert_config(raner), len(labels), pooler=True)
        model.load_state_dict(normalize_keys(torch.load(raner / "pytorch_model.bin", weights_only=True)))
        model.eval()
        if mode == "int8-after-fp32":
            quantize_model(model)
        tagger = torch_tagger(LoadedModel(model=model, labels=labels, max_length=512, source=raner,
                                          **text_front_end(raner)))
    loaded_at = time.perf_counter() - T0
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
                      "chars_per_s": len(doc) / statistics.median(runs),
                      "imported": ",".join(sorted({"torch", "transformers"} & set(sys.modules))) or "-"}))


def build(tmp: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO))
    import torch
    from transformers import BertConfig

    from worker.model.artifact import quantize
    from worker.model.network import BertCrf
    from worker.model.raner_dir import write_raner_dir

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
        weights = (artifact / "model.onnx").stat().st_size / 2**20
        fp32 = (raner / "pytorch_model.bin").stat().st_size / 2**20
    print(f"BERT-base shape, 13 labels, 2 threads, 1,024-char doc, medians of {runs} runs "
          f"(weights: fp32 {fp32:.0f} MiB, int8 artifact {weights:.0f} MiB)")
    print("ready s = imports (torch + shiti) + model load + one warm-up call, from the child's first line")
    print(f"{'mode':21} {'peak RSS MiB':>13} {'ready s':>8} {'import s':>9} {'load s':>7} {'chars/s':>8} "
          f"{'x int8-after-fp32':>18} imported")
    keys = ("vmhwm_mib", "ready_s", "import_s", "load_s", "chars_per_s")
    meds = {m: {k: statistics.median(r[k] for r in rows[m]) for k in keys} for m in MODES}
    base = meds["int8-after-fp32"]["chars_per_s"]
    for mode in MODES:
        med = meds[mode]
        print(f"{mode:21} {med['vmhwm_mib']:13.0f} {med['ready_s']:8.2f} {med['import_s']:9.2f} "
              f"{med['load_s']:7.2f} {med['chars_per_s']:8.0f} {med['chars_per_s'] / base:18.2f} "
              f"{rows[mode][0].get('imported')}")
    for mode in MODES:
        print(f"{mode} per run chars/s:", [round(r["chars_per_s"]) for r in rows[mode]])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main(int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3)
