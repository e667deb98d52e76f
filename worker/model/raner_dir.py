"""Writing a model as a ModelScope RaNER checkpoint directory (docs/raner_format.md §1, §7).

Training saves its FP32 checkpoints in this layout so the same loader reads our
models and real RaNER checkpoints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from worker.model.network import BertCrf

CONFIGURATION = {
    "framework": "pytorch",
    "task": "named-entity-recognition",
    "model": {"type": "transformer-crf"},
    "pipeline": {"type": "named-entity-recognition"},
    "preprocessor": {"type": "sequence-labeling-tokenizer"},
}


def write_raner_dir(
    model: BertCrf,
    *,
    labels: list[str],
    vocab: Path,
    out: Path,
    char_mode: bool,
    head_prefix: bool = False,
) -> Path:
    """Save ``model`` as a RaNER directory (legacy flat keys unless ``head_prefix``)."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    cfg.id2label = dict(enumerate(labels))
    cfg.label2id = {lab: i for i, lab in enumerate(labels)}
    cfg.save_pretrained(out)
    (out / "configuration.json").write_text(json.dumps(CONFIGURATION, indent=2))
    if Path(vocab).resolve() != (out / "vocab.txt").resolve():
        shutil.copyfile(vocab, out / "vocab.txt")
    tok_cfg = {"do_lower_case": True, "is_split_into_words": char_mode}
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    state = {}
    for key, value in model.state_dict().items():
        if head_prefix and not key.startswith("encoder."):
            key = "head." + key
        state[key] = value.detach().cpu().clone()  # loadable on any machine (a GPU run saves CPU tensors)
    tmp = out / "pytorch_model.bin.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "pytorch_model.bin")
    return out


def dequantize_artifact(artifact: Path, out: Path) -> Path:
    """Write an INT8 artifact back as an FP32 RaNER directory (INT8 weights dequantized).

    For continuing training from a shipped model whose FP32 checkpoint is gone: the result
    loads with ``shiti model train --init``, the loader and ``quantize`` like any checkpoint.
    The weights carry the INT8 rounding; fine-tuning starts from there.

    Raises:
        ModelLoadError: ``artifact`` is not a shiti artifact.
    """
    from transformers import BertConfig

    from worker.model.artifact import PACKED, is_artifact
    from worker.tagger.errors import ModelLoadError
    from worker.model.qembed import dequantize_embedding_state
    from worker.model.smooth import unsmooth_state

    artifact, out = Path(artifact), Path(out)
    if not is_artifact(artifact):
        raise ModelLoadError(f"{artifact}: not a shiti artifact (no manifest.json)")
    state = torch.load(artifact / "model.pt", map_location="cpu", weights_only=True)
    floats: dict[str, torch.Tensor] = {}
    # An INT8 Linear ``<name>`` saves (qint8 weight, bias) under ``<name>`` + PACKED, plus an
    # output ``scale``/``zero_point`` that a float Linear does not have.
    quantized = tuple(k[: -len(PACKED)] + "." for k in state if k.endswith(PACKED))
    for key, value in state.items():
        if key.endswith(PACKED):
            weight, bias = value
            base = key[: -len(PACKED)]
            floats[base + ".weight"] = weight.dequantize()
            if bias is not None:
                floats[base + ".bias"] = bias.detach()
        elif not key.startswith(quantized) and not key.endswith(("position_ids", "token_type_ids")):
            floats[key] = value
    floats = unsmooth_state(dequantize_embedding_state(floats))  # a RaNER dir is plain FP32 BERT
    labels = json.loads((artifact / "labels.json").read_text(encoding="utf-8"))
    manifest = json.loads((artifact / "manifest.json").read_text())
    model = BertCrf(BertConfig.from_dict(json.loads((artifact / "config.json").read_text())), len(labels),
                    pooler=bool(manifest.get("pooler")))
    missing, unexpected = model.load_state_dict(floats, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ModelLoadError(f"{artifact}/model.pt: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return write_raner_dir(model, labels=labels, vocab=artifact / "vocab.txt", out=out,
                           char_mode=manifest.get("mode") == "char")
