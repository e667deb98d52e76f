"""Tiny synthetic RaNER checkpoints in the ModelScope layout (docs/raner_format.md §7).

Written directly with ``BertModel`` + ``torch.save`` (not with our writer), so the
loader is tested against the documented layout rather than against itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:
    import torch
    from transformers import BertConfig, BertModel

    from worker.model.raner_dir import CONFIGURATION
except ImportError:  # a serving install: the modules that build these skip (tests/conftest.py)
    torch = None  # type: ignore[assignment]

CJK = (
    "北京上海南京广州深圳天津重庆中国人民大学清华医院公司银行政府委员会新华社张王李刘陈杨黄赵周吴"
    "我你他她们的了是在有和与这那一个今年月日说到去来对为就都也而及但由从向被把比第小明红华东西"
    "温岭市新河镇神秘传说关。，、！？：；“”（）《》"
)
ASCII = "abcdefghijklmnopqrstuvwxyz0123456789"
SPECIAL = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
BIOES = ["O"] + [f"{p}-{t}" for t in ("LOC", "ORG", "PER") for p in "BIES"]


def vocab() -> list[str]:
    return SPECIAL + list(dict.fromkeys(CJK)) + list(ASCII) + ["20", "##23", "##ab", "shi", "##ti"]


def make_tiny(
    out: Path,
    *,
    scheme: str = "BIO",
    char_mode: bool = False,
    head_prefix: bool = False,
    position_ids: bool = True,
    pooler: bool = True,
    seed: int = 0,
    scale: float = 5.0,
    layers: int = 2,
    hidden: int = 32,
    max_pos: int = 64,
) -> Path:
    """Write a random but deterministic RaNER dir; ``scale`` sharpens the Linear so tags vary."""
    labels = {"BIO": BIO, "BIOES": BIOES}[scheme]
    out.mkdir(parents=True, exist_ok=True)
    words = vocab()
    (out / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(words),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=max_pos,
        type_vocab_size=2,
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    cfg.save_pretrained(out)
    (out / "configuration.json").write_text(json.dumps(CONFIGURATION))
    if char_mode:
        (out / "tokenizer_config.json").write_text(json.dumps({"is_split_into_words": True}))
    encoder = BertModel(cfg, add_pooling_layer=pooler)
    state = {"encoder." + k: v.clone() for k, v in encoder.state_dict().items()}
    if position_ids:
        state["encoder.embeddings.position_ids"] = torch.arange(max_pos)[None]
    n = len(labels)
    head = {
        "linear.weight": torch.randn(n, hidden) * scale / hidden**0.5,
        "linear.bias": torch.randn(n) * 0.5,
        "crf.start_transitions": torch.randn(n) * 0.5,
        "crf.end_transitions": torch.randn(n) * 0.5,
        "crf.transitions": torch.randn(n, n) * 0.5,
    }
    for k, v in head.items():
        state[("head." + k) if head_prefix else k] = v
    torch.save(state, out / "pytorch_model.bin")
    return out


def _need_torch() -> None:
    if torch is None:
        from tests.conftest import TORCH_REASON

        pytest.skip(TORCH_REASON)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    if torch is None:
        return
    torch.set_num_threads(1)


@pytest.fixture
def tiny(tmp_path: Path):
    """Factory: ``tiny(name, **make_tiny_kwargs)`` -> path of a fresh RaNER dir."""
    _need_torch()

    def build(name: str = "ckpt", **kwargs) -> Path:
        return make_tiny(tmp_path / name, **kwargs)

    return build


def make_rule_model(out: Path, rules: dict[str, str], *, char_mode: bool = True, max_pos: int = 64) -> Path:
    """A checkpoint whose tags depend only on the character: ``rules[ch]`` or ``O``.

    Position/type embeddings and every attention/FFN output projection are zeroed,
    so each layer reduces to LayerNorm and the hidden state of a token is a fixed
    vector per token id; the Linear reads the label off that vector, and zero
    transitions make Viterbi take it. Deterministic "strong weights" for tests
    about windows and merging.
    """
    make_tiny(out, scheme="BIO", char_mode=char_mode, max_pos=max_pos, position_ids=False)
    state = torch.load(out / "pytorch_model.bin")
    words = vocab()
    hidden = state["linear.weight"].shape[1]
    emb = torch.zeros(len(words), hidden)
    for i, tok in enumerate(words):
        emb[i, BIO.index(rules.get(tok, "O"))] = 10.0
    state["encoder.embeddings.word_embeddings.weight"] = emb
    for key in list(state):
        if key.endswith(("position_embeddings.weight", "token_type_embeddings.weight")):
            state[key] = torch.zeros_like(state[key])
        if (".attention.output.dense." in key or ".output.dense." in key) and "attention" in key or (
            key.endswith(("output.dense.weight", "output.dense.bias")) and "attention" not in key
        ):
            state[key] = torch.zeros_like(state[key])
        if "LayerNorm.weight" in key:
            state[key] = torch.ones_like(state[key])
        if "LayerNorm.bias" in key:
            state[key] = torch.zeros_like(state[key])
    n = len(BIO)
    state["linear.weight"] = torch.eye(n, hidden) * 3.0
    state["linear.bias"] = torch.zeros(n)
    for key in ("crf.start_transitions", "crf.end_transitions", "crf.transitions"):
        state[key] = torch.zeros_like(state[key])
    torch.save(state, out / "pytorch_model.bin")
    return out


RULES = {"王": "B-PER", "小": "I-PER", "明": "I-PER", "北": "B-LOC", "京": "I-LOC"}


@pytest.fixture
def rule_dir(tmp_path: Path) -> Path:
    _need_torch()
    return make_rule_model(tmp_path / "rules", RULES)
