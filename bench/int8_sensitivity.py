"""Which encoder Linear layers make dynamic INT8 lose F1, and how much FFN smoothing wins back?

Scores FP32, all-INT8, and INT8 with one kind of Linear (or one layer, or one layer's FFN output)
kept FP32, on a BIO file. With ``--calibration`` it scores all-INT8 after smoothing the FFNs
(``worker/model/smooth.py``) at each ``--alphas`` value instead. Use a dev split, never the test
file: the result picks ``shiti model quantize --smooth-alpha`` (the torch INT8 kernels stand in for
onnxruntime's here: artifacts quantize every Linear, so the per-layer rows say where smoothing
must help, not what to leave FP32).

    python bench/int8_sensitivity.py --model runs/e5l6/best --data dev.txt --limit 800
    python bench/int8_sensitivity.py --model runs/stage3/best --data dev.txt --limit 2000 \
        --calibration train-minus-dev.txt --alphas 0.5,0.65,0.8,0.9,1.0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="FP32 RaNER directory (e.g. a training run's best/)")
    ap.add_argument("--data", required=True, help="BIO file (a dev split)")
    ap.add_argument("--limit", type=int, default=800, help="first N sentences")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calibration", default=None, help="training text to smooth on (BIO or one text per line)")
    ap.add_argument("--alphas", default="0.5,0.65,0.8,0.9,1.0", help="smoothing strengths, with --calibration")
    args = ap.parse_args()

    import torch

    from worker.model.artifact import quantize_model
    from worker.model.checkpoint import load_raner_dir
    from worker.model.evaluate import evaluate
    from worker.model.smooth import calibration_texts, ffn_input_absmax, smooth_ffn
    from worker.model.torch_tagger import torch_tagger

    torch.set_num_threads(args.threads)
    layers = int(json.loads((Path(args.model) / "config.json").read_text())["num_hidden_layers"])

    def run(name: str, keep: Callable[[str], bool] | None, alpha: float | None = None) -> None:
        loaded = load_raner_dir(args.model)
        if alpha is not None:
            tagger = torch_tagger(loaded)
            amax = ffn_input_absmax(loaded.model, lambda: tagger.annotate(calib))
            smooth_ffn(loaded.model, amax, alpha)
        if keep is not None:
            names = [n for n, m in loaded.model.encoder.named_modules() if isinstance(m, torch.nn.Linear)]
            quantize_model(loaded.model, keep_float=[n for n in names if keep(n)])
        result = evaluate(torch_tagger(loaded), args.data, limit=args.limit)
        print(f"{name:40} F1 {result['f1']:.4f}  {result['chars_per_second']:>9,.0f} chars/s", flush=True)

    run("fp32", None)
    run("int8 (all encoder Linears)", lambda n: False)
    if args.calibration:
        calib = calibration_texts(args.calibration)
        run("int8, FFN outputs fp32", lambda n: n.endswith("output.dense") and "attention" not in n)
        for alpha in (float(a) for a in args.alphas.split(",")):
            run(f"int8 (all), FFNs smoothed alpha {alpha}", lambda n: False, alpha)
        return
    for kind in KINDS:
        run(f"fp32: {kind}", lambda n, k=kind: n.endswith(k))
    run("fp32: output.dense (FFN out)", lambda n: n.endswith("output.dense") and "attention" not in n)
    for i in range(layers):
        run(f"fp32: layer {i}", lambda n, i=i: n.startswith(f"encoder.layer.{i}."))
    for i in range(layers):
        run(f"fp32: layer {i} FFN out", lambda n, i=i: n == f"encoder.layer.{i}.output.dense")


if __name__ == "__main__":
    main()
