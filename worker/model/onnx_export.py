"""Export a BERT-CRF to an ONNX Runtime INT8 artifact (conversion side: needs torch).

The encoder and output Linear are exported from the pure-torch
:class:`~worker.model.tagnet.TaggerNet` (opset 17, dynamic batch and sequence axes), the
graph is fused by ``onnxruntime.transformers``' BERT optimizer (Attention, SkipLayerNorm,
BiasGelu) and its encoder MatMuls quantized to INT8 with per-channel weight scales by
``onnxruntime.quantization.quantize_dynamic``. The output Linear stays FP32 (as in the torch
artifacts: it is tiny and keeps entity scores close to FP32), the word embeddings are stored
as int8 rows with one scale each (:mod:`~worker.model.qembed`), and a SmoothQuant scaling of
the FFNs (:mod:`~worker.model.smooth`) is kept in the graph: folding it back out before
quantizing costs accuracy. The CRF transitions go to ``crf.json``; the serving side
(:mod:`worker.tagger.onnx_model`) never imports torch.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd

from worker.model.checkpoint import LoadedModel
from worker.tagger.errors import ModelLoadError
from worker.tagger.onnx_model import GRAPH, ONNX_FILES, ONNX_FORMAT, ONNX_KIND, sha256_file
from worker.model.qembed import Int8Embedding, quantize_word_embeddings
from worker.model.tagnet import TaggerNet

OPSET = 17
# onnxruntime's fused SkipLayerNormalization kernel ran slower than the LayerNormalization + Add
# it replaces on one window at a time (model card), so sessions are told to skip it.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def float_linears(module: nn.Module) -> None:
    """Replace every dynamic INT8 Linear under ``module`` by an FP32 one holding its dequantized
    weight (smoothing scales stay where they are), so the network can be traced and exported."""
    for name, child in module.named_children():
        if isinstance(child, nnqd.Linear):
            weight = child.weight().dequantize()
            bias = child.bias()
            lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
            with torch.no_grad():
                lin.weight.copy_(weight)
                if bias is not None:
                    lin.bias.copy_(bias)
            setattr(module, name, lin)
        else:
            float_linears(child)


class _Emissions(nn.Module):
    """``TaggerNet`` emissions over every token (words are picked after the run, in NumPy)."""

    def __init__(self, net: TaggerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # No attention mask: a window always runs alone or with windows of its own length
        # (batch invariance, see onnx_model.py), so no row is ever padded.
        return self.net.linear(self.net.encoder(input_ids))


def _export_fp32(net: TaggerNet, path: Path) -> None:
    net.eval()
    for layer in net.encoder.encoder.layer:
        layer.attention.self = _EagerSelfAttention(layer.attention.self)
    ids = torch.tensor([[1, 2, 3, 4], [1, 3, 2, 4]]) % net.config.vocab_size
    torch.onnx.export(
        _Emissions(net), (ids,), str(path), opset_version=OPSET, dynamo=False,
        input_names=["input_ids"], output_names=["emissions"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "emissions": {0: "batch", 1: "seq"}},
    )


class _EagerSelfAttention(nn.Module):
    """BERT self-attention written out as transformers' eager ``BertSelfAttention`` (matmul,
    scale, softmax, matmul), the pattern onnxruntime's optimizer fuses into one Attention op;
    ``scaled_dot_product_attention`` exports as a graph it does not recognise."""

    def __init__(self, attn: nn.Module) -> None:
        super().__init__()
        self.heads = attn.heads
        self.query, self.key, self.value = attn.query, attn.key, attn.value

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bsz, steps, hidden = x.shape
        size = hidden // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(bsz, steps, self.heads, size).permute(0, 2, 1, 3)

        scores = torch.matmul(split(self.query(x)), split(self.key(x)).transpose(-1, -2)) / math.sqrt(size)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, split(self.value(x))).permute(0, 2, 1, 3).contiguous()
        return ctx.view(bsz, steps, hidden)


def _optimize_and_quantize(fp32: Path, out: Path, shape: dict, *, int8: bool = True) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    fusion = FusionOptions("bert")
    fusion.enable_skip_layer_norm = False  # see DISABLED_OPTIMIZERS
    opt = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=shape["num_attention_heads"],
                                   hidden_size=shape["hidden_size"], optimization_options=fusion)
    fused = opt.get_fused_operator_statistics()
    if fused.get("Attention", 0) != shape["num_hidden_layers"]:
        raise ModelLoadError(f"onnxruntime fused {fused.get('Attention', 0)} attention blocks of "
                             f"{shape['num_hidden_layers']} layers: the exported graph has an unexpected shape")
    optimized = fp32.with_name("optimized.onnx")
    opt.save_model_to_file(str(out if not int8 else optimized))
    if not int8:
        return
    head = [n.name for n in opt.model.graph.node if n.op_type == "MatMul" and n.name.startswith("/linear/")]
    quantize_dynamic(str(optimized), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=head,
                     # without it the optimizer's output makes quantize_dynamic fail on untyped tensors
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def export_onnx(loaded: LoadedModel, out_dir: str | Path, *, max_length: int | None = None,
                source: str = "", smoothing: dict | None = None, vocab: Path | None = None,
                int8: bool = True) -> Path:
    """Write ``loaded`` (FP32, or a torch INT8 artifact) as an ONNX Runtime INT8 artifact.

    Args:
        loaded: the model; changed in place (Linears made FP32, attention rewritten for export).
        out_dir: the artifact directory (created; existing files replaced).
        max_length: default window recorded in the manifest (capped by the position embeddings).
        source: where the model came from, recorded in the manifest.
        smoothing: the FFN smoothing already applied to ``loaded`` (recorded), if any.
        vocab: the ``vocab.txt`` to copy (default: ``loaded.source/vocab.txt``).
        int8: quantize (the default); ``False`` keeps an FP32 graph, for parity checks of the path.

    Raises:
        ModelLoadError: the graph did not fuse as a BERT encoder should.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = loaded.model
    float_linears(net)
    if int8 and not isinstance(net.encoder.embeddings.word_embeddings, Int8Embedding):
        quantize_word_embeddings(net)
    shape = net.config.to_dict()
    with tempfile.TemporaryDirectory(prefix="shiti-onnx-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _export_fp32(net, fp32)
        _optimize_and_quantize(fp32, Path(tmp) / GRAPH, shape, int8=int8)
        shutil.move(str(Path(tmp) / GRAPH), out / GRAPH)
    crf = net.crf
    (out / "crf.json").write_text(json.dumps({
        "start": crf.start_transitions.detach().float().tolist(),
        "end": crf.end_transitions.detach().float().tolist(),
        "transitions": crf.transitions.detach().float().tolist(),
    }))
    shutil.copyfile(vocab or loaded.source / "vocab.txt", out / "vocab.txt")
    tok = {"do_lower_case": loaded.lower, "is_split_into_words": loaded.char_mode}
    (out / "tokenizer_config.json").write_text(json.dumps(tok, indent=2))
    (out / "labels.json").write_text(json.dumps(loaded.labels, ensure_ascii=False))
    (out / "config.json").write_text(json.dumps(shape, indent=2))
    import onnxruntime

    manifest = {
        "format_version": ONNX_FORMAT,
        "kind": ONNX_KIND,
        "graph": GRAPH,
        "files": {name: sha256_file(out / name) for name in ONNX_FILES},
        "source": source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "onnxruntime_version": onnxruntime.__version__,
        "opset": OPSET,
        "quantization": ("dynamic INT8 (per-channel weights, per-window activations), word embeddings int8 rows"
                         if int8 else "none (FP32)"),
        "disabled_optimizers": DISABLED_OPTIMIZERS,
        "mode": "char" if loaded.char_mode else "word",
        "max_length": min(loaded.max_length, max_length or loaded.max_length),
        "smoothing": smoothing,
        "num_labels": len(loaded.labels),
    }
    lineage = loaded.source / "lineage.json"  # written by `shiti model train` beside best/'s weights
    if lineage.is_file():
        manifest["trained_on"] = json.loads(lineage.read_text(encoding="utf-8"))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    stale = out / "model.pt"  # a torch artifact written here before
    if stale.exists():
        stale.unlink()
    return out
