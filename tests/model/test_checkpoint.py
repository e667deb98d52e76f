"""Loading RaNER directories: layouts, label sources, modes, and one clear error per broken dir."""

from __future__ import annotations

import json

import pytest
import torch

from worker.model.checkpoint import load_raner_dir
from worker.tagger.errors import ModelError, ModelLoadError


@pytest.mark.parametrize("head_prefix", [False, True])
@pytest.mark.parametrize("pooler", [False, True])
def test_both_key_layouts_load_the_same_weights(tiny, head_prefix: bool, pooler: bool) -> None:
    d = tiny("x", head_prefix=head_prefix, pooler=pooler, seed=7)
    raw = torch.load(d / "pytorch_model.bin")
    m = load_raner_dir(d).model
    prefix = "head." if head_prefix else ""
    assert torch.equal(m.linear.weight, raw[prefix + "linear.weight"])
    assert torch.equal(m.crf.transitions, raw[prefix + "crf.transitions"])
    assert (m.encoder.pooler is not None) == pooler


def test_labels_bio_bioes_and_lookup_order(tiny) -> None:
    d = tiny("x", scheme="BIOES")
    assert load_raner_dir(d).labels[:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    # configuration.json preprocessor.id2label overrides config.json
    cfgn = json.loads((d / "configuration.json").read_text())
    labels = ["O"] + [f"X{i}" for i in range(12)]
    cfgn["preprocessor"]["id2label"] = {str(i): lab for i, lab in enumerate(labels)}
    (d / "configuration.json").write_text(json.dumps(cfgn))
    assert load_raner_dir(d).labels == labels
    # label_mapping.json overrides both
    mapping = {f"L{i}": i for i in range(13)}
    (d / "label_mapping.json").write_text(json.dumps(mapping))
    assert load_raner_dir(d).labels == list(mapping)


def test_char_mode_and_lowercase_flags(tiny) -> None:
    assert load_raner_dir(tiny("c", char_mode=True)).char_mode is True
    w = load_raner_dir(tiny("w"))
    assert w.char_mode is False
    assert w.tokenizer.convert_ids_to_tokens(w.tokenizer("SHI")["input_ids"])[1] == "shi"


def test_gamma_beta_names_are_mapped(tiny) -> None:
    d = tiny("g")
    sd = torch.load(d / "pytorch_model.bin")
    key = "encoder.embeddings.LayerNorm.weight"
    sd[key.replace("weight", "gamma")] = sd.pop(key) * 2
    sd["encoder.embeddings.LayerNorm.beta"] = sd.pop("encoder.embeddings.LayerNorm.bias")
    torch.save(sd, d / "pytorch_model.bin")
    m = load_raner_dir(d).model
    assert torch.equal(m.encoder.embeddings.LayerNorm.weight, sd["encoder.embeddings.LayerNorm.gamma"])


@pytest.mark.parametrize(
    ("breakage", "needle"),
    [
        ("no_weights", "pytorch_model.bin"),
        ("no_vocab", "vocab.txt"),
        ("no_configuration", "configuration.json"),
        ("missing_tensor", "crf.transitions"),
        ("bad_shape", "linear.weight"),
        ("extra_tensor", "mystery.weight"),
        ("xlmr", "xlm-roberta"),
        ("bad_labels", "label ids"),
        ("not_a_dir", "not a directory"),
    ],
)
def test_broken_dirs_raise_one_clear_error(tiny, breakage: str, needle: str) -> None:
    d = tiny("b")
    sd_path = d / "pytorch_model.bin"
    if breakage == "no_weights":
        sd_path.unlink()
    elif breakage == "no_vocab":
        (d / "vocab.txt").unlink()
    elif breakage == "no_configuration":
        (d / "configuration.json").unlink()
    elif breakage in ("missing_tensor", "bad_shape", "extra_tensor"):
        sd = torch.load(sd_path)
        if breakage == "missing_tensor":
            del sd["crf.transitions"]
        elif breakage == "bad_shape":
            sd["linear.weight"] = torch.zeros(3, 5)
        else:
            sd["mystery.weight"] = torch.zeros(1)
        torch.save(sd, sd_path)
    elif breakage == "xlmr":
        cfg = json.loads((d / "config.json").read_text())
        cfg["model_type"] = "xlm-roberta"
        (d / "config.json").write_text(json.dumps(cfg))
    elif breakage == "bad_labels":
        cfg = json.loads((d / "config.json").read_text())
        cfg["label2id"] = {"O": 0, "B-PER": 5}
        (d / "config.json").write_text(json.dumps(cfg))
    elif breakage == "not_a_dir":
        d = d / "nope"
    with pytest.raises(ModelLoadError, match=needle.replace(".", r"\.")) as info:
        load_raner_dir(d)
    assert isinstance(info.value, ModelError)


def test_structbert_model_type_loads_as_bert(tiny) -> None:
    d = tiny("s")
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "structbert"
    (d / "config.json").write_text(json.dumps(cfg))
    assert load_raner_dir(d).model.encoder.config.hidden_size == 32
