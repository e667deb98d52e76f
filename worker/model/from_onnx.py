"""Recovering a trainable FP32 BERT-CRF from a shiti ONNX INT8 artifact (conversion side: needs torch).

A shipped artifact (``shiti model quantize``, :mod:`~worker.model.onnx_export`) is the only copy
of a model once its FP32 checkpoint is gone, so fine-tuning "from the shipped model" starts by
reading its weights back out of ``model.onnx``. The graph is the torch export after
onnxruntime's BERT fusion and ``quantize_dynamic``; per layer it holds

* one fused ``QAttention`` (``Attention`` in an FP32 graph) whose ``(hidden, 3 * hidden)`` INT8
  weight is ``[Wq^T | Wk^T | Wv^T]`` with one scale (and zero point) per column, and a fused bias;
* ``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(activation scale * weight scales)``
  for the attention output, intermediate and output projections (``MatMul`` when FP32), each
  followed by its bias (``Add``, or ``BiasGelu`` for the intermediate one);
* the SmoothQuant ``Mul`` by ``intermediate.out_scale`` (:mod:`~worker.model.smooth`) before the
  output projection, folded back into that projection's weight here: ``W @ (a * s) == (W * s) @ a``;
* the residual ``Add`` and ``LayerNormalization`` after each projection.

The embeddings are int8 rows times one scale each (:mod:`~worker.model.qembed`); the token-type
row 0 was constant-folded into an ``Add`` of a ``(hidden,)`` initializer; the position table is
sliced from ``[0, steps)``. The output Linear is an FP32 ``MatMul`` + ``Add`` and the CRF lives in
``crf.json``.

Everything is found by following node inputs from ``input_ids`` to ``emissions``, never by
initializer names or order: ``torch.onnx.export`` de-duplicates equal initializers (a tiny
model's zero biases all become ``LayerNorm.bias`` of the embeddings) and the quantizer renames
the weights (``onnx::MatMul_698_quantized``).

The recovered weights are exactly the FP32 function the INT8 weights stand for (dequantized,
smoothing folded out); what a torch run of them does not reproduce is the graph's dynamic
rounding of activations to INT8, so emissions agree closely but not bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from storage.catalog import sha256_file  # the one file hash (the manifests' too)
from worker.tagger.onnx_model import GRAPH, ONNX_KIND, is_onnx_artifact

# Written into the recovered directory: where it came from (so a training run reuses it only for
# the same graph) and what of the artifact a RaNER directory cannot hold (the score calibration).
PROVENANCE = "recovered_from.json"
# Where ``train`` puts the recovery of an ``--init`` artifact, under its ``--out``.
INIT_DIR = "init-from-artifact"
_ARTIFACT_FILES = (GRAPH, "crf.json", "config.json", "labels.json", "vocab.txt", "tokenizer_config.json",
                   "manifest.json")
# The files a recovery is made of (manifest.json only says where the graph is): reuse needs them unchanged.
_INPUTS = ("crf.json", "config.json", "labels.json", "vocab.txt", "tokenizer_config.json")


def _input_hashes(artifact: Path) -> dict[str, str]:
    """sha256 of the graph and every other file the recovery reads."""
    manifest = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
    graph = manifest.get("graph", GRAPH)
    return {name: sha256_file(artifact / name) for name in (graph, *_INPUTS)}


def _check_artifact(artifact: Path) -> dict[str, Any]:
    """The artifact's manifest, after checking it is one this module can read.

    Raises:
        ValueError: not a directory, no/unreadable manifest, another ``kind``, or a file missing.
    """
    if not artifact.is_dir():
        raise ValueError(f"{artifact}: not a directory (expected a shiti ONNX artifact, kind {ONNX_KIND!r})")
    manifest_file = artifact / "manifest.json"
    if not manifest_file.is_file():
        raise ValueError(f"{artifact}: no manifest.json: not a shiti ONNX artifact (kind {ONNX_KIND!r})")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{manifest_file}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != ONNX_KIND:
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        raise ValueError(f"{artifact}: manifest kind is {kind!r}, not {ONNX_KIND!r}: only a shiti ONNX INT8 "
                         "BERT-CRF can be recovered (a torch artifact: `shiti model dequantize`)")
    graph = manifest.get("graph", GRAPH)
    missing = [name for name in {*_ARTIFACT_FILES, graph} if not (artifact / name).is_file()]
    if missing:
        raise ValueError(f"{artifact}: not a complete ONNX artifact, missing {sorted(missing)}")
    return manifest


class _Graph:
    """The ONNX graph as a dataflow: who produces and who consumes each tensor, and the constants."""

    def __init__(self, model: Any, where: Path) -> None:
        from onnx import numpy_helper

        self.where = where
        graph = model.graph
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        self.producer: dict[str, Any] = {}
        for node in graph.node:
            if node.op_type == "Constant":  # a Constant node is a constant too (some exporters keep them)
                for attr in node.attribute:
                    if attr.name == "value":
                        self.consts[node.output[0]] = numpy_helper.to_array(attr.t)
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
            for name in node.output:
                self.producer[name] = node
        self.inputs = [i.name for i in graph.input if i.name not in self.consts]
        self.outputs = [o.name for o in graph.output]

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.where}: {what}: not the graph `shiti model quantize` writes for a BERT-CRF")

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def need_const(self, name: str, what: str) -> np.ndarray:
        value = self.consts.get(name)
        if value is None:
            raise self.fail(f"{what} ({name!r}) is not a constant")
        return value

    def users(self, tensor: str, *ops: str) -> list[Any]:
        return [n for n in self.consumers.get(tensor, []) if not ops or n.op_type in ops]

    def one_user(self, tensor: str, ops: tuple[str, ...], what: str) -> Any:
        found = self.users(tensor, *ops)
        if len(found) != 1:
            raise self.fail(f"{what}: expected one {'/'.join(ops)} reading {tensor!r}, found {len(found)}")
        return found[0]


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _other(node: Any, tensor: str) -> str:
    """The input of a two-input node that is not ``tensor``."""
    ins = [i for i in node.input if i]
    if len(ins) != 2 or tensor not in ins:
        raise ValueError(f"{node.op_type} {node.name}: expected two inputs, one of them {tensor!r}")
    return str(ins[1] if ins[0] == tensor else ins[0])


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None) -> np.ndarray:
    """``(q - zero) * scale`` per output column (the last axis; scalars broadcast): the FP32 weight
    an INT8 MatMul stands for."""
    q32 = q.astype(np.float32)
    if zero is not None:
        q32 = q32 - zero.astype(np.float32)
    return (q32 * scale.astype(np.float32)).astype(np.float32)


def _linear(g: _Graph, x: str, what: str) -> tuple[np.ndarray, str]:
    """The Linear whose input is the float tensor ``x``: its ``(in, out)`` FP32 weight and the name
    of its output before the bias (a ``MatMul``, or the quantized chain ``DynamicQuantizeLinear ->
    MatMulInteger -> Cast -> Mul(scales)``)."""
    plain = [n for n in g.users(x, "MatMul") if n.input[0] == x and g.const(n.input[1]) is not None]
    if plain:
        if len(plain) != 1:
            raise g.fail(f"{what}: several MatMuls read {x!r}")
        node = plain[0]
        return g.need_const(node.input[1], f"{what} weight").astype(np.float32), node.output[0]
    dql = g.one_user(x, ("DynamicQuantizeLinear",), what)
    xq, xs, xzp = dql.output
    mmi = g.one_user(xq, ("MatMulInteger",), what)
    if mmi.input[0] != xq or (len(mmi.input) > 2 and mmi.input[2] not in ("", xzp)):
        raise g.fail(f"{what}: MatMulInteger {mmi.name} does not read the quantized input as its A")
    wq = g.need_const(mmi.input[1], f"{what} INT8 weight")
    wzp = g.const(mmi.input[3]) if len(mmi.input) > 3 and mmi.input[3] else None
    cast = g.one_user(mmi.output[0], ("Cast",), f"{what} (int32 -> float)")
    rescale = g.one_user(cast.output[0], ("Mul",), f"{what} (output scale)")
    scales = g.producer.get(_other(rescale, cast.output[0]))
    # The scale of the result is the activation's (per window) times the weight's (per column).
    if scales is None or scales.op_type != "Mul" or xs not in scales.input:
        raise g.fail(f"{what}: the output of {mmi.name} is not rescaled by its input's scale")
    w_scale = g.need_const(_other(scales, xs), f"{what} weight scale")
    return _dequantize(wq, w_scale, wzp), rescale.output[0]


def _bias_add(g: _Graph, y: str, size: int, what: str) -> tuple[np.ndarray, str]:
    """The ``Add`` of a ``(size,)`` constant bias to ``y``: the bias and the sum's name."""
    add = g.one_user(y, ("Add",), f"{what} bias")
    bias = g.need_const(_other(add, y), f"{what} bias")
    if bias.shape != (size,):
        raise g.fail(f"{what}: bias of shape {bias.shape}, expected ({size},)")
    return bias.astype(np.float32), add.output[0]


def _residual_norm(g: _Graph, y: str, residual: str, eps: float, what: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``LayerNorm(y + residual)``: its weight, bias and output."""
    add = g.one_user(y, ("Add",), f"{what} residual")
    if _other(add, y) != residual:
        raise g.fail(f"{what}: the residual Add {add.name} does not add the sub-layer's input")
    return _layer_norm(g, add.output[0], eps, what)


def _layer_norm(g: _Graph, x: str, eps: float, what: str) -> tuple[np.ndarray, np.ndarray, str]:
    norm = g.one_user(x, ("LayerNormalization",), what)
    got = float(_attrs(norm).get("epsilon", 1e-5))
    if not math.isclose(got, eps, rel_tol=1e-3):
        raise g.fail(f"{what}: LayerNorm epsilon {got} but config.json says {eps}")
    if int(_attrs(norm).get("axis", -1)) != -1:
        raise g.fail(f"{what}: LayerNorm over axis {_attrs(norm)['axis']}, not the hidden axis")
    weight = g.need_const(norm.input[1], f"{what} LayerNorm weight").astype(np.float32)
    bias = g.need_const(norm.input[2], f"{what} LayerNorm bias").astype(np.float32)
    return weight, bias, norm.output[0]


def _attention_node(g: _Graph, x: str) -> tuple[Any, bool] | None:
    """The fused attention reading ``x`` (FP32 ``Attention``, or ``QAttention`` on its quantized
    copy) and whether it is quantized; ``None`` when ``x`` feeds no attention (the encoder's end)."""
    fp = [n for n in g.users(x, "Attention") if n.input[0] == x]
    if fp:
        return fp[0], False
    for dql in g.users(x, "DynamicQuantizeLinear"):
        q = [n for n in g.users(dql.output[0], "QAttention") if n.input[0] == dql.output[0]]
        if q:
            if q[0].input[3] != dql.output[1]:
                raise g.fail(f"{q[0].name}: input scale is not the one of its quantized input")
            return q[0], True
    return None


def _attention(g: _Graph, node: Any, quantized: bool, hidden: int, heads: int, what: str) -> dict[str, np.ndarray]:
    """Q/K/V weights (torch ``(out, in)``) and biases of a fused attention node."""
    attrs = _attrs(node)
    if int(attrs.get("num_heads", 0)) != heads:
        raise g.fail(f"{what}: {attrs.get('num_heads')} heads, config.json says {heads}")
    if int(attrs.get("unidirectional", 0)):
        raise g.fail(f"{what}: causal (unidirectional) attention")
    sizes = list(attrs.get("qkv_hidden_sizes") or [hidden] * 3)
    if sizes != [hidden] * 3:
        raise g.fail(f"{what}: qkv_hidden_sizes {sizes}")
    # An explicit score scale other than BERT's 1 / sqrt(head size) would be a different function.
    if "scale" in attrs and not math.isclose(float(attrs["scale"]), 1 / math.sqrt(hidden // heads), rel_tol=1e-5):
        raise g.fail(f"{what}: attention scale {attrs['scale']}")
    mask = node.input[5 if quantized else 3] if len(node.input) > (5 if quantized else 3) else ""
    if mask:  # the export feeds no mask: a window runs alone, unpadded (onnx_export.py)
        raise g.fail(f"{what}: attention takes a mask input {mask!r}")
    if quantized:
        wq = g.need_const(node.input[1], f"{what} QKV weight")
        scale = g.need_const(node.input[4], f"{what} QKV weight scale")
        zero = g.const(node.input[7]) if len(node.input) > 7 and node.input[7] else None
        weight = _dequantize(wq, scale, zero)
    else:
        weight = g.need_const(node.input[1], f"{what} QKV weight").astype(np.float32)
    bias = g.need_const(node.input[2], f"{what} QKV bias").astype(np.float32)
    if weight.shape != (hidden, 3 * hidden) or bias.shape != (3 * hidden,):
        raise g.fail(f"{what}: QKV weight {weight.shape} / bias {bias.shape}, expected ({hidden}, {3 * hidden})")
    out: dict[str, np.ndarray] = {}
    # onnxruntime's fusion concatenates the three projections column-wise in the order Q, K, V.
    for i, name in enumerate(("query", "key", "value")):
        cols = slice(i * hidden, (i + 1) * hidden)
        out[f"{name}.weight"] = np.ascontiguousarray(weight[:, cols].T)
        out[f"{name}.bias"] = bias[cols].copy()
    return out


def _gelu_bias(g: _Graph, y: str, size: int, what: str) -> tuple[np.ndarray, str]:
    """The intermediate projection's bias and activation: fused ``BiasGelu(y, b)`` or ``Gelu(y + b)``."""
    fused = g.users(y, "BiasGelu")
    if fused:
        node = fused[0]
        bias = g.need_const(_other(node, y), f"{what} bias")
        out = node.output[0]
    else:
        bias, summed = _bias_add(g, y, size, what)
        gelu = g.users(summed, "Gelu")
        if not gelu:
            ops = sorted({n.op_type for n in g.users(summed)})
            raise g.fail(f"{what}: activation is {ops}, expected (Bias)Gelu (erf GELU, config hidden_act 'gelu')")
        out = gelu[0].output[0]
        if _attrs(gelu[0]).get("approximate", "none") not in ("none", b"none"):
            raise g.fail(f"{what}: tanh-approximated Gelu")
    if bias.shape != (size,):
        raise g.fail(f"{what}: bias of shape {bias.shape}, expected ({size},)")
    return bias.astype(np.float32), out


def _embeddings(g: _Graph, shape: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
    """Word, position and token-type tables and the embedding LayerNorm; returns them and its output."""
    vocab, hidden, positions = shape["vocab_size"], shape["hidden_size"], shape["max_position_embeddings"]
    if g.inputs != ["input_ids"]:
        raise g.fail(f"graph inputs {g.inputs}, expected ['input_ids']")
    if g.users("input_ids", "EmbedLayerNormalization"):
        raise g.fail("fused EmbedLayerNormalization (not produced by onnx_export.py) is not supported")
    table = scale = None
    gathered = ""
    for node in g.users("input_ids", "Gather"):
        data = g.const(node.input[0])
        if data is None or node.input[1] != "input_ids" or int(_attrs(node).get("axis", 0)) != 0:
            continue
        if data.shape == (vocab, hidden):
            table, gathered = data, node.output[0]
        elif data.shape == (vocab,):
            scale = data
    if table is None:
        raise g.fail(f"no ({vocab}, {hidden}) word-embedding table gathered by input_ids")
    word_out = gathered
    if table.dtype == np.int8:
        # qembed.py: int8 row times its scale; in the graph Cast(rows) * Unsqueeze(Gather(scale)).
        if scale is None:
            raise g.fail("int8 word embeddings without a per-row scale")
        word = table.astype(np.float32) * scale.astype(np.float32)[:, None]
        cast = g.one_user(gathered, ("Cast",), "word embeddings (int8 -> float)")
        word_out = g.one_user(cast.output[0], ("Mul",), "word embeddings (row scale)").output[0]
    else:
        word = table.astype(np.float32)
    # Walk the sum word + type + position up to the LayerNorm, telling the addends apart by shape.
    token_type: np.ndarray | None = None
    position: np.ndarray | None = None
    cur = word_out
    while True:
        norm = g.users(cur, "LayerNormalization")
        if norm:
            break
        add = g.one_user(cur, ("Add",), "embedding sum")
        other = _other(add, cur)
        value = g.const(other)
        if value is not None and value.shape in ((hidden,), (1, hidden), (1, 1, hidden)):
            if token_type is not None:
                raise g.fail("two constant vectors added to the embeddings")
            token_type = value.reshape(hidden).astype(np.float32)
        else:
            sliced = g.producer.get(other)
            table_pos = g.const(sliced.input[0]) if sliced is not None and sliced.op_type == "Slice" else None
            if sliced is None or table_pos is None or table_pos.shape != (positions, hidden):
                raise g.fail(f"embedding addend {other!r} is neither the token-type row nor a slice of the "
                             f"({positions}, {hidden}) position table")
            starts = g.const(sliced.input[1])
            if starts is None or int(np.asarray(starts).reshape(-1)[0]) != 0:
                raise g.fail("position embeddings are not sliced from position 0")
            position = table_pos.astype(np.float32)
        cur = add.output[0]
    if position is None:
        raise g.fail("no position embeddings added before the embedding LayerNorm")
    if token_type is None:  # a zero row may be folded away altogether
        token_type = np.zeros(hidden, dtype=np.float32)
    ln_w, ln_b, out = _layer_norm(g, cur, float(shape["layer_norm_eps"]), "embeddings")
    # Only type 0 reaches the graph (one segment; BertCrf.emissions passes zeros). Every row gets
    # that vector, so a caller passing another segment id still computes the shipped function.
    types = np.repeat(token_type[None], int(shape["type_vocab_size"]), axis=0)
    return {
        "encoder.embeddings.word_embeddings.weight": word,
        "encoder.embeddings.position_embeddings.weight": position,
        "encoder.embeddings.token_type_embeddings.weight": types,
        "encoder.embeddings.LayerNorm.weight": ln_w,
        "encoder.embeddings.LayerNorm.bias": ln_b,
    }, out


def recover_state(artifact: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The BertCrf state dict (NumPy FP32, ``encoder.``/``linear.``/``crf.`` keys) of an ONNX
    artifact, and facts about the graph (layers, whether it was INT8, smoothed layers).

    Raises:
        ValueError: not a shiti ONNX BERT-CRF artifact, or its graph does not have the expected form
            (the message names what is missing).
    """
    import onnx

    manifest = _check_artifact(artifact)
    shape = json.loads((artifact / "config.json").read_text(encoding="utf-8"))
    labels = json.loads((artifact / "labels.json").read_text(encoding="utf-8"))
    hidden, inter = int(shape["hidden_size"]), int(shape["intermediate_size"])
    heads, eps = int(shape["num_attention_heads"]), float(shape["layer_norm_eps"])
    if shape.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{artifact}/config.json: hidden_act {shape['hidden_act']!r}; only 'gelu' is recovered")
    where = artifact / manifest.get("graph", GRAPH)
    g = _Graph(onnx.load(str(where)), where)
    state, h = _embeddings(g, shape)
    layer, smoothed, quantized = 0, 0, False
    while (att := _attention_node(g, h)) is not None:
        node, q = att
        quantized = quantized or q
        p = f"encoder.encoder.layer.{layer}."
        what = f"layer {layer}"
        for key, value in _attention(g, node, q, hidden, heads, f"{what} attention").items():
            state[p + "attention.self." + key] = value
        w, y = _linear(g, node.output[0], f"{what} attention output")
        state[p + "attention.output.dense.weight"] = np.ascontiguousarray(w.T)
        state[p + "attention.output.dense.bias"], y = _bias_add(g, y, hidden, f"{what} attention output")
        ln_w, ln_b, h1 = _residual_norm(g, y, h, eps, f"{what} attention output")
        state[p + "attention.output.LayerNorm.weight"], state[p + "attention.output.LayerNorm.bias"] = ln_w, ln_b
        w, y = _linear(g, h1, f"{what} intermediate")
        state[p + "intermediate.dense.weight"] = np.ascontiguousarray(w.T)
        state[p + "intermediate.dense.bias"], act = _gelu_bias(g, y, inter, f"{what} intermediate")
        # SmoothQuant: a per-channel Mul after the GELU (out_scale); folded into the next weight.
        out_scale = np.ones(inter, dtype=np.float32)
        for mul in g.users(act, "Mul"):
            scale = g.const(_other(mul, act))
            if scale is not None and scale.shape == (inter,):
                out_scale, act = scale.astype(np.float32), mul.output[0]
                smoothed += 1
                break
        w, y = _linear(g, act, f"{what} output")
        state[p + "output.dense.weight"] = np.ascontiguousarray((w * out_scale[:, None]).T)
        state[p + "output.dense.bias"], y = _bias_add(g, y, hidden, f"{what} output")
        ln_w, ln_b, h = _residual_norm(g, y, h1, eps, f"{what} output")
        state[p + "output.LayerNorm.weight"], state[p + "output.LayerNorm.bias"] = ln_w, ln_b
        layer += 1
    if layer != int(shape["num_hidden_layers"]):
        raise g.fail(f"{layer} attention layers found, config.json says {shape['num_hidden_layers']}")
    w, y = _linear(g, h, "emission Linear")
    if w.shape != (hidden, len(labels)):
        raise g.fail(f"emission Linear of shape {w.shape}, expected ({hidden}, {len(labels)}) for labels.json")
    state["linear.weight"] = np.ascontiguousarray(w.T)
    state["linear.bias"], y = _bias_add(g, y, len(labels), "emission Linear")
    if y not in g.outputs:
        raise g.fail(f"the emission Linear's output {y!r} is not the graph output {g.outputs}")
    crf = json.loads((artifact / "crf.json").read_text(encoding="utf-8"))
    n = len(labels)
    for key, name, want in (("start", "start_transitions", (n,)), ("end", "end_transitions", (n,)),
                            ("transitions", "transitions", (n, n))):
        try:
            value = np.asarray(crf[key], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{artifact}/crf.json: no numeric {key!r} ({exc})") from exc
        if value.shape != want:
            raise ValueError(f"{artifact}/crf.json: {key} has shape {value.shape}, {want} for {n} labels")
        state["crf." + name] = value
    facts = {"layers": layer, "int8": quantized, "smoothed_layers": smoothed,
             "score_calibration": crf.get("score_calibration"), "manifest": manifest, "labels": labels,
             "config": shape}
    return state, facts


def recover_raner_dir(artifact: Path, out: Path) -> Path:
    """Write the FP32 BERT-CRF inside the ONNX artifact ``artifact`` as a RaNER directory ``out``.

    The result loads with :func:`~worker.model.train.init_model` (every BertCrf weight, head and
    CRF included) and :func:`~worker.model.checkpoint.load_raner_dir`: ``pytorch_model.bin``,
    ``config.json`` (shape + labels), ``configuration.json``, ``vocab.txt`` and the artifact's own
    ``tokenizer_config.json``, plus :data:`PROVENANCE` recording the source graph's sha256 and
    the artifact's ``score_calibration``, which has no place in a RaNER directory and does not
    carry over to a fine-tuned model anyway (re-fit it with ``shiti model calibrate``).

    Token-type embeddings: the graph holds only row 0 (folded into a constant Add); every row of
    the recovered table is that row. The directory is written next to ``out`` and renamed into
    place, so a killed recovery never leaves a half-written ``out``.

    Raises:
        ValueError: ``artifact`` is not a shiti ONNX INT8 BERT-CRF (its manifest ``kind``, a missing
            file, or a graph of another form, named).
    """
    import torch
    from transformers import BertConfig

    from worker.model.network import BertCrf
    from worker.model.raner_dir import write_raner_dir

    artifact, out = Path(artifact), Path(out)
    started = time.monotonic()
    arrays, facts = recover_state(artifact)
    labels: list[str] = facts["labels"]
    model = BertCrf(BertConfig.from_dict(dict(facts["config"])), len(labels))
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Buffers (position_ids, token_type_ids) are recomputed, not weights; everything else must be there.
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ValueError(f"{artifact}: recovered state does not fit BertCrf: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    manifest = facts["manifest"]
    write_raner_dir(model, labels=labels, vocab=artifact / "vocab.txt", out=tmp,
                    char_mode=manifest.get("mode", "char") == "char")
    # write_raner_dir writes do_lower_case=True; the artifact's own file is the tokenization it was trained with.
    shutil.copyfile(artifact / "tokenizer_config.json", tmp / "tokenizer_config.json")
    (tmp / PROVENANCE).write_text(json.dumps({
        "artifact": str(artifact.resolve()),
        "sha256": _input_hashes(artifact),
        "artifact_source": manifest.get("source"),
        "int8": facts["int8"],
        "smoothing_folded": manifest.get("smoothing") if facts["smoothed_layers"] else None,
        "token_type_rows": "every row is the graph's row 0 (the only one it holds)",
        "score_calibration": facts["score_calibration"],
        "seconds": round(time.monotonic() - started, 2),
    }, indent=2, ensure_ascii=False))
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def recovered_for(artifact: Path, out: Path) -> bool:
    """Whether ``out`` already holds the recovery of ``artifact`` (its graph and other files unchanged)."""
    try:
        prov = json.loads((out / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (out / "pytorch_model.bin").is_file():
        return False
    # The files themselves, not the manifest's record of them: an edited file shows either way.
    return bool(prov.get("sha256") == _input_hashes(artifact))


def resolve_init(init: str | Path, run_dir: Path) -> Path:
    """The directory training starts from for ``--init``: ``init`` itself, or for a shiti ONNX
    artifact its FP32 recovery in ``run_dir/``:data:`INIT_DIR`, written once and reused while the
    artifact's files are the ones it was made from (recovery is deterministic, so a resumed or restarted run gets
    the very weights, tokenizer and vocabulary of the first)."""
    init = Path(init)
    if not is_onnx_artifact(init):  # the manifest's kind says so
        return init
    target = run_dir / INIT_DIR
    if not recovered_for(init, target):
        recover_raner_dir(init, target)
    return target
