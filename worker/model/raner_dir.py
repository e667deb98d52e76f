"""Writing a model as a ModelScope RaNER checkpoint directory (raner_format.md §1, §7).

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
        state[key] = value.detach().clone()
    tmp = out / "pytorch_model.bin.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "pytorch_model.bin")
    return out
