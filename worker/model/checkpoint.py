"""Loading a ModelScope RaNER checkpoint directory (docs/raner_format.md §1-§3, §6).

Reads labels in modelscope's lookup order, accepts the legacy flat key layout and
the ``head.``-prefixed one, maps TF-style ``gamma``/``beta``, ignores
``position_ids``, and picks word or char tokenization from ``tokenizer_config.json``.
Anything wrong with the directory surfaces as one :class:`ModelLoadError` naming
the missing file, key or mismatched tensor.

Inference never imports transformers: the network is the pure-torch
:class:`~worker.model.tagnet.TaggerNet` and char mode reads ids from ``vocab.txt``
(:class:`~worker.tagger.charvocab.CharVocab`); only a word-mode model loads the fast
tokenizer (lazily).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from worker.model.bert import BertShape
from worker.tagger.charvocab import CharVocab
from worker.tagger.encoding import read_tokenizer_config, read_vocab
from worker.tagger.errors import ModelLoadError
from worker.tagger.jsonfile import read_json
from worker.model.tagnet import TaggerNet

if TYPE_CHECKING:
    from transformers import BertTokenizerFast

REQUIRED = ("configuration.json", "config.json", "pytorch_model.bin", "vocab.txt")
BERT_TYPES = {"bert", "structbert"}


@dataclass
class LoadedModel:
    """A model ready for inference plus everything needed to feed it."""

    model: TaggerNet
    labels: list[str]
    tokenizer: BertTokenizerFast | None  # word mode only
    char_mode: bool
    max_length: int  # largest window (special tokens included) the encoder accepts
    source: Path
    char_vocab: CharVocab | None = None  # char mode only
    lower: bool = True  # do_lower_case


def _labels_from_mapping(mapping: dict, *, inverse: bool, where: str) -> list[str]:
    """Label list indexed by id, from a label2id (or id2label when ``inverse``) dict."""
    try:
        pairs = {int(k): str(v) for k, v in mapping.items()} if inverse else {
            int(v): str(k) for k, v in mapping.items()
        }
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: label ids must be integers") from exc
    if sorted(pairs) != list(range(len(pairs))):
        raise ModelLoadError(f"{where}: label ids are not 0..{len(pairs) - 1}")
    return [pairs[i] for i in range(len(pairs))]


def read_labels(path: Path) -> list[str]:
    """Labels by id, in modelscope's lookup order (docs/raner_format.md §3)."""
    mapping_file = path / "label_mapping.json"
    if mapping_file.exists():
        return _labels_from_mapping(read_json(mapping_file), inverse=False, where=str(mapping_file))
    configuration = read_json(path / "configuration.json")
    for section in ("model", "preprocessor"):
        block = configuration.get(section) or {}
        for key, inverse in (("label2id", False), ("id2label", True)):
            if isinstance(block, dict) and block.get(key):
                return _labels_from_mapping(block[key], inverse=inverse, where=f"configuration.json {section}.{key}")
    config = read_json(path / "config.json")
    for key, inverse in (("label2id", False), ("id2label", True)):
        if config.get(key):
            return _labels_from_mapping(config[key], inverse=inverse, where=f"config.json {key}")
    raise ModelLoadError(f"{path}: no label mapping in label_mapping.json, configuration.json or config.json")


def read_bert_config(path: Path, num_labels: int | None = None) -> BertShape:
    """The encoder shape from ``config.json``; only BERT-architecture types are supported.

    ``num_labels`` is accepted for backwards compatibility and unused (labels come from
    :func:`read_labels`).
    """
    del num_labels
    raw = read_json(path / "config.json")
    model_type = raw.get("model_type", "bert")
    if model_type not in BERT_TYPES:
        raise ModelLoadError(
            f"{path}/config.json: model_type {model_type!r} is not supported (only bert/structbert; "
            "xlm-roberta large RaNER models are not implemented)"
        )
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise ModelLoadError(f"{path}/config.json: only absolute position embeddings are supported")
    try:
        return BertShape.from_dict(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path}/config.json: invalid BERT config ({exc})") from exc


def read_char_vocab(path: Path, *, lower: bool) -> CharVocab:
    """The char-mode id table from ``vocab.txt`` (no transformers)."""
    try:
        return CharVocab.from_file(path / "vocab.txt", lower=lower)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}/vocab.txt: cannot build the char table ({exc})") from exc


def read_tokenizer(path: Path) -> tuple[BertTokenizerFast, bool]:
    """Fast BERT tokenizer from ``vocab.txt`` and whether the checkpoint uses char mode.

    Imports transformers: used by training and by word-mode models only.
    """
    from transformers import BertTokenizerFast

    lower, char_mode = read_tokenizer_config(path)
    try:
        # transformers 5 silently ignores ``vocab_file=`` (it builds a 5-token vocab), so the
        # vocab is read here and passed as a dict, with load_vocab's rules (rstrip "\n").
        tokenizer = BertTokenizerFast(vocab=read_vocab(path / "vocab.txt"), do_lower_case=lower)
    except Exception as exc:  # tokenizers raises its own exception types
        raise ModelLoadError(f"{path}/vocab.txt: cannot build a tokenizer ({exc})") from exc
    return tokenizer, char_mode


def text_front_end(path: Path) -> dict[str, Any]:
    """``LoadedModel`` fields for the text side: a char table or (word mode) the fast tokenizer."""
    lower, char_mode = read_tokenizer_config(path)
    if char_mode:
        return {"tokenizer": None, "char_mode": True, "char_vocab": read_char_vocab(path, lower=lower), "lower": lower}
    tokenizer, _ = read_tokenizer(path)
    return {"tokenizer": tokenizer, "char_mode": False, "char_vocab": None, "lower": lower}


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Legacy layout keys: strip ``head.``, map ``gamma``/``beta``, drop ``position_ids``."""
    out = {}
    for key, value in state.items():
        if key.endswith(("position_ids", "embeddings.token_type_ids")):  # buffers, not weights
            continue
        key = key.removeprefix("head.")
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = value
    return out


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors with normalized key names (memory-mapped where possible)."""
    weights = path / "pytorch_model.bin"
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) torch.save format cannot be memory-mapped
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{weights}: cannot load tensors ({exc})") from exc
    if not isinstance(state, dict):
        raise ModelLoadError(f"{weights}: expected a dict of tensors, got {type(state).__name__}")
    return normalize_keys(state)


def check_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Raise naming the first missing, unexpected or mis-shaped tensor."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise ModelLoadError(f"{where}: missing tensor(s) {missing[:5]} ({len(missing)} in all)")
    if unexpected:
        raise ModelLoadError(f"{where}: unexpected tensor(s) {unexpected[:5]} ({len(unexpected)} in all)")
    for key, ref in expected.items():
        if not isinstance(ref, torch.Tensor):  # e.g. the dtype entry of quantized packed params
            continue
        if not isinstance(state[key], torch.Tensor) or tuple(state[key].shape) != tuple(ref.shape):
            raise ModelLoadError(
                f"{where}: tensor {key} has shape {tuple(state[key].shape)}, config expects {tuple(ref.shape)}"
            )


def load_raner_dir(path: str | Path) -> LoadedModel:
    """Load a RaNER checkpoint directory as an FP32 :class:`TaggerNet` in eval mode.

    The skeleton is built on the ``meta`` device and the checkpoint tensors are
    assigned into it, so weights are never held twice.

    Raises:
        ModelLoadError: a required file is missing, a label map or config is bad,
            or a tensor is missing, unexpected or mis-shaped.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a directory")
    for name in REQUIRED:
        if not (path / name).exists():
            raise ModelLoadError(f"{path}: not a RaNER checkpoint, missing {name}")
    labels = read_labels(path)
    shape = read_bert_config(path)
    front = text_front_end(path)
    state = read_state(path)
    pooler = any(k.startswith("encoder.pooler.") for k in state)
    with torch.device("meta"):
        model = TaggerNet(shape, len(labels), pooler=pooler)
    check_state(model, state, path / "pytorch_model.bin")
    model.load_state_dict(state, assign=True)
    _materialize_buffers(model)
    model.eval()
    max_length = min(512, shape.max_position_embeddings)
    return LoadedModel(model=model, labels=labels, max_length=max_length, source=path, **front)


def _materialize_buffers(model: torch.nn.Module) -> None:
    """Recreate non-persistent buffers (position_ids etc.) left on ``meta`` by the skeleton."""
    for module in model.modules():
        for name, buf in list(module._buffers.items()):
            if buf is not None and buf.is_meta:
                if name == "position_ids":
                    value = torch.arange(buf.shape[-1]).expand(buf.shape).clone()
                else:
                    value = torch.zeros(buf.shape, dtype=buf.dtype)
                module._buffers[name] = value
