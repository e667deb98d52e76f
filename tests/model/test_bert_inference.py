"""The pure-torch inference encoder equals transformers' BertModel; workers never import transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from worker.model.bert import BertEncoder, BertShape
from worker.model.checkpoint import load_raner_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pooler", [False, True])
def test_hidden_states_equal_bert_model_with_padding(pooler: bool) -> None:
    # Given a random BertModel and our encoder loaded from its state dict (assign=True, meta skeleton)
    torch.manual_seed(3)
    cfg = BertConfig(vocab_size=97, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=80, max_position_embeddings=40, type_vocab_size=2)
    ref = BertModel(cfg, add_pooling_layer=pooler).eval()
    with torch.no_grad():  # non-trivial LayerNorm and type-0 embedding
        for name, p in ref.named_parameters():
            if "LayerNorm" in name or "token_type" in name:
                p.add_(torch.randn_like(p) * 0.3)
    shape = BertShape.from_dict(cfg.to_dict())
    with torch.device("meta"):
        ours = BertEncoder(shape, pooler=pooler)
    state = {k: v.clone() for k, v in ref.state_dict().items() if not k.endswith(("position_ids", "token_type_ids"))}
    ours.load_state_dict(state, assign=True)
    ours.eval()
    # When both run a padded batch
    ids = torch.randint(1, 97, (3, 17))
    att = torch.ones(3, 17, dtype=torch.long)
    att[1, 11:] = 0
    att[2, 5:] = 0
    with torch.inference_mode():
        want = ref(input_ids=ids, attention_mask=att, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        got = ours(ids, att)
        got_unpadded = ours(ids[:1], None)
    # Then every real position agrees to 1e-4
    real = att.bool()
    assert (got - want).abs()[real].max() < 1e-4
    assert (got_unpadded - want[:1]).abs().max() < 1e-4
    assert set(ours.state_dict()) == set(state)


def test_shape_round_trips_through_bert_config() -> None:
    shape = BertShape(vocab_size=11, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=30)
    back = BertShape.from_dict(BertConfig(**{k: v for k, v in shape.to_dict().items() if k != "model_type"}).to_dict())
    assert back == shape
    with pytest.raises(ValueError):
        BertShape.from_dict({"hidden_size": 10, "num_attention_heads": 3})


@pytest.mark.parametrize("char_mode", [True, False])
def test_worker_load_imports_neither_torch_nor_transformers(tiny, char_mode: bool) -> None:
    # Given a checkpoint and its ONNX INT8 artifact (what workers serve)
    from worker.model.artifact import quantize

    src = tiny("src", char_mode=char_mode)
    art = quantize(src, src.parent / "art")
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from worker.tagger.loading import load_tagger;"
        "t = load_tagger(sys.argv[2]); ents = t.annotate(['北京大学和清华大学在北京'])[0];"
        "print(json.dumps([sorted({'torch', 'transformers'} & set(sys.modules)), len(ents) >= 0]))"
    )
    # When a fresh process loads it and tags (as a worker does)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(REPO), str(art)],
                         capture_output=True, text=True, timeout=120, check=True)
    imported, _ = json.loads(out.stdout.strip().splitlines()[-1])
    # Then neither torch nor transformers was imported, in char or word mode (word mode tokenizes
    # with the tokenizers library)
    assert imported == []


def test_loaded_model_matches_training_network_emissions(tiny) -> None:
    from worker.model.network import BertCrf

    d = tiny("e", char_mode=True, seed=5)
    loaded = load_raner_dir(d)
    cfg = BertConfig.from_pretrained(d)
    train_net = BertCrf(cfg, len(loaded.labels), pooler=True).eval()
    raw = torch.load(d / "pytorch_model.bin")
    train_net.load_state_dict({k: v for k, v in raw.items() if "position_ids" not in k}, strict=False)
    ids = torch.tensor([[3, 10, 11, 12, 4], [3, 13, 14, 4, 0]])
    att = (torch.arange(5)[None] < torch.tensor([[5], [4]])).long()
    widx = torch.tensor([[1, 2, 3], [1, 2, 0]])
    with torch.inference_mode():
        want = train_net.emissions(ids, att, widx)
        got = loaded.model.emissions(ids, att, widx)
    assert (got - want).abs()[:, :2].max() < 1e-4 and (got - want).abs()[0].max() < 1e-4


def test_heap_trim_and_pin_report_glibc() -> None:
    import platform

    from worker.tagger.heap import pin_mmap_threshold, trim

    trim()  # callable any time; returns whether pages were released
    if platform.libc_ver()[0] == "glibc":
        assert pin_mmap_threshold(32 * 1024 * 1024) is True  # the top of glibc's dynamic range: harmless
