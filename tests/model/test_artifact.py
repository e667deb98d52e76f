"""INT8 artifacts: manifest, round trip equal to quantize-at-load, agreement with FP32."""

from __future__ import annotations

import json
import random

import pytest
from torch.ao.nn.quantized import dynamic as nnqd

from worker.model.artifact import load_artifact, quantize
from worker.tagger.errors import ModelLoadError
from worker.model.torch_tagger import load_torch_tagger, torch_tagger
from worker.tagger.tagger import Tagger


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
    art = quantize(src, tmp_path / "art", fmt="torch")
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["mode"] == ("char" if char_mode else "word")
    assert len(manifest["sha256"]) == 64 and manifest["format_version"] == 1
    loaded = load_artifact(art, verify=True)
    assert isinstance(loaded.model.encoder.encoder.layer[0].attention.self.query, nnqd.Linear)
    assert not any(p.is_meta for p in loaded.model.parameters())
    texts = _sample_texts(40) + ["北京 abc 2023 😀\r\n清华"]
    a = load_torch_tagger(art, max_length=48).annotate(texts)
    b = load_torch_tagger(src, int8=True, max_length=48).annotate(texts)
    assert a == b


def test_float_modules_and_max_length_round_trip(tiny, tmp_path) -> None:
    # Given layers kept FP32 and a training window recorded at quantize time
    src = tiny("src", scheme="BIO", char_mode=True)
    keep = ["encoder.layer.1.output.dense", "encoder.layer.0.attention.self.query"]
    art = quantize(src, tmp_path / "art", max_length=24, keep_float=keep, fmt="torch")
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
    assert torch_tagger(loaded, max_length=24).annotate(texts) == torch_tagger(ref, max_length=24).annotate(texts)
    with pytest.raises(ModelLoadError, match="no Linear"):
        quantize(src, tmp_path / "bad", keep_float=["encoder.layer.9.nope"], fmt="torch")


def test_int8_agrees_with_fp32_on_99_percent_of_entities(tiny) -> None:
    src = tiny("src", scheme="BIOES", scale=8.0, seed=11)
    texts = _sample_texts(300, seed=1)
    fp32 = _keys(load_torch_tagger(src, int8=False, max_length=64).annotate(texts))
    int8 = _keys(load_torch_tagger(src, int8=True, max_length=64).annotate(texts))
    union = sum(len(a | b) for a, b in zip(fp32, int8))
    same = sum(len(a & b) for a, b in zip(fp32, int8))
    assert union > 500
    assert same / union >= 0.99, (same, union)


def test_tampered_or_incomplete_artifact_is_rejected(tiny, tmp_path) -> None:
    art = quantize(tiny("src"), tmp_path / "art", fmt="torch")
    with open(art / "model.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_artifact(art, verify=True)
    (art / "labels.json").unlink()
    with pytest.raises(ModelLoadError, match="labels.json"):
        load_artifact(art)
    assert isinstance(load_torch_tagger(tiny("again")), Tagger)


def _rss_file_kib() -> int:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def test_release_pages_drops_resident_pages_of_a_file_and_keeps_data(tmp_path) -> None:
    import torch

    from worker.tagger.heap import file_mappings, release_pages

    # Given a 64 MiB tensor file loaded with mmap and read once (its pages resident)
    path = tmp_path / "big.pt"
    torch.save({"w": torch.arange(16 * 2**20, dtype=torch.float32)}, path)
    state = torch.load(path, mmap=True, weights_only=True)
    before = _rss_file_kib()
    total = float(state["w"].sum())
    touched = _rss_file_kib()
    assert touched - before > 50 * 1024
    # When the mapping's pages are released
    released = release_pages(file_mappings(path))
    # Then they no longer count in RSS, and the tensor still reads the same values from the file
    assert released >= 64 * 2**20
    assert touched - _rss_file_kib() > 50 * 1024
    assert float(state["w"].sum()) == total
    assert release_pages(file_mappings(tmp_path / "not-mapped.pt")) == 0


@pytest.mark.parametrize("engine", ["fbgemm", "onednn"])
def test_quant_engine_choice_loads_and_tags_alike(tiny, tmp_path, engine: str) -> None:
    import torch

    from worker.model.artifact import choose_engine

    src = tiny("src", scheme="BIOES", scale=8.0, seed=11)
    art = quantize(src, tmp_path / "art", fmt="torch")
    texts = _sample_texts(200, seed=2)
    ref = _keys(load_torch_tagger(art, max_length=64, engine="fbgemm").annotate(texts))
    got = _keys(load_torch_tagger(art, max_length=64, engine=engine).annotate(texts))
    assert torch.backends.quantized.engine == engine
    union = sum(len(a | b) for a, b in zip(ref, got))
    same = sum(len(a & b) for a, b in zip(ref, got))
    # Kernels round differently (oneDNN quantizes activations with its own rounding), so the
    # two engines agree on entities the way INT8 agrees with FP32.
    assert union > 300 and same / union >= 0.99, (same, union)
    with pytest.raises(ModelLoadError, match="no-such-engine"):
        load_artifact(art, engine="no-such-engine")
    assert choose_engine("") == "fbgemm"


@pytest.mark.parametrize("char_mode", [False, True])
def test_dequantized_artifact_is_a_raner_dir_that_tags_like_it(tiny, tmp_path, char_mode: bool) -> None:
    from worker.model.checkpoint import load_raner_dir
    from worker.model.raner_dir import dequantize_artifact
    from worker.model.train import init_model

    src = tiny("src", scheme="BIOES", scale=8.0, seed=11, char_mode=char_mode)
    art = quantize(src, tmp_path / "art", keep_float=["encoder.layer.1.output.dense"], fmt="torch")
    back = dequantize_artifact(art, tmp_path / "back")
    # It is a RaNER dir: the loader reads it, with the artifact's labels and tokenization
    loaded = load_raner_dir(back)
    assert loaded.labels == json.loads((art / "labels.json").read_text())
    assert loaded.char_mode == char_mode
    # FP32 from dequantized weights tags like the artifact (only activation rounding differs)
    texts = _sample_texts(300, seed=3)
    a = _keys(load_torch_tagger(art, max_length=64).annotate(texts))
    b = _keys(load_torch_tagger(back, int8=False, max_length=64).annotate(texts))
    union = sum(len(x | y) for x, y in zip(a, b))
    same = sum(len(x & y) for x, y in zip(a, b))
    assert union > 300 and same / union >= 0.99, (same, union)
    # and training can start from it, head included
    model = init_model(str(back), len(loaded.labels), None)
    assert model.linear.weight.shape[0] == len(loaded.labels)
    with pytest.raises(ModelLoadError, match="not a shiti artifact"):
        dequantize_artifact(src, tmp_path / "nope")


def test_int8_weight_of_the_wrong_shape_is_named(tiny, tmp_path) -> None:
    art = quantize(tiny("src"), tmp_path / "art", fmt="torch")
    cfg = json.loads((art / "config.json").read_text())
    cfg["intermediate_size"] += 1  # only INT8 Linear weights depend on it
    (art / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"INT8 weight encoder\.encoder\.layer\.0\.intermediate\.dense"):
        load_artifact(art)
