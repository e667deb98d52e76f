"""Static (calibrated) INT8 against the shipped dynamic INT8: dev F1 and encoder tokens/s.

Dynamic INT8 quantizes each MatMul's input with a scale taken from the run itself, so windows
batched together share a scale and a document's entities would depend on its batch-mates. A
static graph fixes every scale in advance, which would let windows be padded into batches and
keep each one's result its own. This measures whether that is worth having:

1. calibration: the shipped graph is run over training sentences (never dev or test) with every
   ``DynamicQuantizeLinear`` input exposed, recording each window's min and max;
2. the static graph: each ``DynamicQuantizeLinear`` becomes a ``QuantizeLinear`` with the scale
   and zero point of the full range seen (times ``--margin``), computed as
   ``DynamicQuantizeLinear`` does, and ``QAttention`` gets a per-row length input (``lengths``)
   so padded rows can be masked; the INT8 weights are the shipped ones;
3. dev F1 of both (the four dev splits of ``bench/accuracy.py``) and encoder tokens/s for batches
   of 1 and 8 windows (random ids, 1 thread, medians of interleaved rounds).

Usage::

    python -W ignore bench/static_int8.py [--model models/shiti-zh-small] [--margin 1.0 --margin 1.1]
        [--per-file 400] [--splits ../runs/data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def calibration_texts(splits: Path, per_file: int) -> list[str]:
    """Training sentences of each domain (the first ``per_file`` of each; MSRA twice as many)."""
    from worker.model.bio import read_bio

    files = [(splits / "msra-train.txt", 2 * per_file), (DATA / "weibo" / "train.txt", per_file),
             (DATA / "resume" / "train.txt", per_file), (splits / "cluener-train.txt", per_file)]
    return [s.text for f, k in files for s in list(read_bio(f))[:k] if s.text.strip()]


def ranges(model: Path, texts: list[str]) -> dict[str, tuple[float, float]]:
    """(min, max) over every calibration window of each ``DynamicQuantizeLinear`` input."""
    import onnx
    import onnxruntime as ort

    from worker.tagger.loading import load_tagger

    graph = onnx.load(str(model / "model.onnx"))
    names = [n.input[0] for n in graph.graph.node if n.op_type == "DynamicQuantizeLinear"]
    for x in names:
        graph.graph.output.append(onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(graph, f"{tmp}/probe.onnx")
        session = ort.InferenceSession(f"{tmp}/probe.onnx", providers=["CPUExecutionProvider"])
    tagger = load_tagger(model, threads=1)
    lo = {x: np.inf for x in names}
    hi = {x: -np.inf for x in names}
    for text in texts:
        for item in tagger._items(0, text):  # the windows and ids the tagger itself would run
            for x, a in zip(names, session.run(names, {"input_ids": item.ids[None]})):
                lo[x], hi[x] = min(lo[x], float(a.min())), max(hi[x], float(a.max()))
    return {x: (lo[x], hi[x]) for x in names}


def static_artifact(model: Path, found: dict[str, tuple[float, float]], margin: float, out: Path) -> Path:
    """A copy of the artifact whose graph quantizes activations with fixed, calibrated scales."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from storage.catalog import sha256_file

    graph = onnx.load(str(model / "model.onnx"))
    g = graph.graph
    nodes = []
    for n in g.node:
        if n.op_type == "DynamicQuantizeLinear":
            lo, hi = found[n.input[0]]
            a, b = min(0.0, lo) * margin, max(0.0, hi) * margin
            scale = np.float32((b - a) / 255.0)
            zero = np.uint8(np.clip(np.round(-a / scale), 0, 255))
            g.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), n.output[1]))
            g.initializer.append(numpy_helper.from_array(np.array(zero, dtype=np.uint8), n.output[2]))
            nodes.append(helper.make_node("QuantizeLinear", [n.input[0], n.output[1], n.output[2]], [n.output[0]]))
            continue
        if n.op_type == "QAttention":  # input 5 is mask_index: a (batch,) length per row
            ins = list(n.input) + [""] * (6 - len(n.input))
            ins[5] = "lengths"
            del n.input[:]
            n.input.extend(ins)
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    g.input.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]))
    onnx.checker.check_model(graph)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model, out)
    onnx.save(graph, str(out / "model.onnx"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = sha256_file(out / "model.onnx")
    manifest["quantization"] = f"static INT8 (calibrated full range x {margin}), bench/static_int8.py"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def _feed_lengths() -> None:
    """Let the tagger's engine feed ``lengths`` to graphs that take it (one unpadded window)."""
    from worker.tagger import onnx_model

    def token_emissions(self, ids: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
        feeds = {"input_ids": ids[None]}
        if any(i.name == "lengths" for i in self._session.get_inputs()):
            feeds["lengths"] = np.array([len(ids)], dtype=np.int32)
        return self._session.run(None, feeds)[0][0]  # type: ignore[no-any-return]

    onnx_model.OnnxModel.token_emissions = token_emissions  # type: ignore[method-assign]


def tokens_per_second(graphs: dict[str, Path], shapes: list[tuple[int, int]], rounds: int = 3) -> dict:
    """Encoder tokens/s per graph and (batch, length), 1 thread, medians of interleaved rounds."""
    from worker.tagger.onnx_model import _session

    sessions = {k: _session(p / "model.onnx", 1, ["SkipLayerNormFusion"]) for k, p in graphs.items()}
    rng = np.random.default_rng(0)
    got: dict[str, dict[tuple[int, int], list[float]]] = {k: {} for k in graphs}
    for _ in range(rounds):
        for bsz, steps in shapes:
            ids = rng.integers(1000, 8000, size=(bsz, steps)).astype(np.int64)
            for k, s in sessions.items():
                feeds = {"input_ids": ids}
                if any(i.name == "lengths" for i in s.get_inputs()):
                    feeds["lengths"] = np.full(bsz, steps, np.int32)
                s.run(None, feeds)
                n = max(3, 15000 // (bsz * steps))
                t = time.perf_counter()
                for _ in range(n):
                    s.run(None, feeds)
                got[k].setdefault((bsz, steps), []).append(bsz * steps * n / (time.perf_counter() - t))
    return {k: {shape: statistics.median(v) for shape, v in per.items()} for k, per in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "shiti-zh-small")
    ap.add_argument("--margin", type=float, action="append", help="range multiplier (repeatable; default 1.0)")
    ap.add_argument("--per-file", type=int, default=400, help="calibration sentences per training file")
    ap.add_argument("--splits", type=Path, default=ROOT.parent / "runs" / "data")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from accuracy import dev_files

    from worker.model.evaluate import evaluate_files
    from worker.tagger.loading import load_tagger

    found = ranges(args.model, calibration_texts(args.splits, args.per_file))
    _feed_lengths()
    with tempfile.TemporaryDirectory(prefix="shiti-static-") as tmp:
        graphs = {"dynamic (shipped)": args.model}
        for margin in args.margin or [1.0]:
            graphs[f"static x{margin}"] = static_artifact(args.model, found, margin, Path(tmp) / f"m{margin}")
        files = dev_files(args.splits)
        print(f"{'graph':<20}" + "".join(f"{f.parent.name + '/' + f.name:>28}" for f in files) + f"{'dev macro':>11}")
        for name, path in graphs.items():
            res = evaluate_files(load_tagger(path, threads=2), files)
            print(f"{name:<20}" + "".join(f"{res['files'][str(f)]['f1']:28.4f}" for f in files)
                  + f"{res['macro_f1']:11.4f}", flush=True)
        shapes = [(1, 50), (8, 50), (1, 256), (4, 256)]
        speed = tokens_per_second(graphs, shapes)
        print("encoder tokens/s, 1 thread (batch x length):")
        for name, per in speed.items():
            print(f"  {name:<20}" + "  ".join(f"{b}x{t}: {per[(b, t)]:,.0f}" for b, t in shapes))


if __name__ == "__main__":
    main()
