"""INT8 artifacts: manifest, round trip equal to quantize-at-load, agreement with FP32."""

from __future__ import annotations

import json
import random

import pytest
from torch.ao.nn.quantized import dynamic as nnqd

from worker.model.artifact import load_artifact, quantize
from worker.model.errors import ModelLoadError
from worker.model.tagger import Tagger, load_tagger


def _sample_texts(n: int, seed: int = 0) -> list[str]:
    from conftest import CJK

    rng = random.Random(seed)
    alphabet = CJK[:110]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 60))) for _ in range(n)]


def _keys(results) -> list[set]:
    return [{(e.start, e.end, e.label) for e in ents} for ents in results]


@pytest.mark.parametrize("char_mode", [False, True])
def test_artifact_round_trip_equals_quantize_at_load(tiny, tmp_path, char_mode: bool) -> None:
    src = tiny("src", scheme="BIOES", char_mode=char_mode, head_prefix=char_mode)
    art = quantize(src, tmp_path / "art")
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["mode"] == ("char" if char_mode else "word")
    assert len(manifest["sha256"]) == 64 and manifest["format_version"] == 1
    loaded = load_artifact(art, verify=True)
    assert isinstance(loaded.model.encoder.encoder.layer[0].attention.self.query, nnqd.Linear)
    assert not any(p.is_meta for p in loaded.model.parameters())
    texts = _sample_texts(40) + ["北京 abc 2023 😀\r\n清华"]
    a = load_tagger(art, max_length=48).annotate(texts)
    b = load_tagger(src, int8=True, max_length=48).annotate(texts)
    assert a == b


def test_float_modules_and_max_length_round_trip(tiny, tmp_path) -> None:
    # Given layers kept FP32 and a training window recorded at quantize time
    src = tiny("src", scheme="BIO", char_mode=True)
    keep = ["encoder.layer.1.output.dense", "encoder.layer.0.attention.self.query"]
    art = quantize(src, tmp_path / "art", max_length=24, keep_float=keep)
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["float_modules"] == sorted(keep) and manifest["max_length"] == 24
    # When the artifact loads, those modules are float and the rest INT8
    loaded = load_artifact(art)
    layers = loaded.model.encoder.encoder.layer
    assert type(layers[1].output.dense).__name__ == "Linear" and not isinstance(layers[1].output.dense, nnqd.Linear)
    assert not isinstance(layers[0].attention.self.query, nnqd.Linear)
    assert isinstance(layers[0].attention.self.key, nnqd.Linear)
    assert loaded.max_length == 24
    # Then it tags exactly like the same mixed quantization done at load time
    from worker.model.artifact import quantize_model
    from worker.model.checkpoint import load_raner_dir

    ref = load_raner_dir(src)
    quantize_model(ref.model, keep_float=keep)
    texts = _sample_texts(30)
    assert Tagger(loaded, max_length=24).annotate(texts) == Tagger(ref, max_length=24).annotate(texts)
    with pytest.raises(ModelLoadError, match="no Linear"):
        quantize(src, tmp_path / "bad", keep_float=["encoder.layer.9.nope"])


def test_int8_agrees_with_fp32_on_99_percent_of_entities(tiny) -> None:
    src = tiny("src", scheme="BIOES", scale=8.0, seed=11)
    texts = _sample_texts(300, seed=1)
    fp32 = _keys(load_tagger(src, int8=False, max_length=64).annotate(texts))
    int8 = _keys(load_tagger(src, int8=True, max_length=64).annotate(texts))
    union = sum(len(a | b) for a, b in zip(fp32, int8))
    same = sum(len(a & b) for a, b in zip(fp32, int8))
    assert union > 500
    assert same / union >= 0.99, (same, union)


def test_tampered_or_incomplete_artifact_is_rejected(tiny, tmp_path) -> None:
    art = quantize(tiny("src"), tmp_path / "art")
    with open(art / "model.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_artifact(art, verify=True)
    (art / "labels.json").unlink()
    with pytest.raises(ModelLoadError, match="labels.json"):
        load_artifact(art)
    assert isinstance(load_tagger(tiny("again")), Tagger)
