"""Row-wise INT8 word embeddings: rounding bounds, artifact format, old artifacts, write-back."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_artifact import _keys, _sample_texts
from torch import nn

from worker.model.artifact import load_artifact, quantize
from worker.model.checkpoint import load_raner_dir
from worker.tagger.errors import ModelLoadError
from worker.model.torch_tagger import load_torch_tagger, torch_tagger
from worker.model.qembed import Int8Embedding
from worker.model.raner_dir import dequantize_artifact

EMB = "encoder.embeddings.word_embeddings"


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(1, 12),
    dim=st.integers(1, 16),
    spread=st.floats(1e-6, 1e3),
    seed=st.integers(0, 2**16),
)
def test_each_value_within_half_a_step_of_its_row(rows: int, dim: int, spread: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, dim, generator=gen) * spread
    weight[0] = 0.0  # an all-zero row must stay zero (and not divide by zero)
    q = Int8Embedding.from_float(weight)
    assert q.weight.dtype == torch.int8 and q.weight.abs().max() <= 127
    back = q.dequantize()
    step = weight.abs().amax(1, keepdim=True) / 127
    assert torch.all((back - weight).abs() <= step / 2 + 1e-6 * spread)
    assert torch.equal(back[0], torch.zeros(dim))
    ids = torch.randint(0, rows, (3, 5), generator=gen)
    assert torch.equal(q(ids), back[ids])


def test_artifact_stores_int8_rows_and_tags_like_quantize_at_load(tiny, tmp_path) -> None:
    src = tiny("src", char_mode=True, scale=8.0, seed=3)
    small = quantize(src, tmp_path / "int8", fmt="torch")
    big = quantize(src, tmp_path / "float", int8_embeddings=False, fmt="torch")
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (small, big)]
    assert [m["word_embeddings"] for m in manifests] == ["int8-rowwise", "float32"]
    state = torch.load(small / "model.pt", weights_only=True)
    assert state[f"{EMB}.weight"].dtype == torch.int8 and state[f"{EMB}.scale"].dtype == torch.float32
    table = torch.load(big / "model.pt", weights_only=True)[f"{EMB}.weight"]
    saved = (big / "model.pt").stat().st_size - (small / "model.pt").stat().st_size
    # 3 of the table's 4 bytes per value are gone, less one FP32 scale per row
    assert saved >= 0.9 * (table.numel() * 3 - table.shape[0] * 4)
    loaded = load_artifact(small)
    assert isinstance(loaded.model.encoder.embeddings.word_embeddings, Int8Embedding)
    assert type(load_artifact(big).model.encoder.embeddings.word_embeddings) is nn.Embedding
    texts = _sample_texts(40, seed=5)
    at_load = load_torch_tagger(src, int8=True, max_length=48).annotate(texts)
    assert torch_tagger(loaded, max_length=48).annotate(texts) == at_load
    # and the INT8 rows change next to nothing against FP32 rows
    a, b = _keys(at_load), _keys(load_torch_tagger(big, max_length=48).annotate(texts))
    union = sum(len(x | y) for x, y in zip(a, b))
    assert union > 50 and sum(len(x & y) for x, y in zip(a, b)) / union >= 0.97


def test_artifact_without_the_manifest_entry_loads_float_embeddings(tiny, tmp_path) -> None:
    # Given an artifact written before the entry existed (FP32 table, no "word_embeddings")
    src = tiny("src", char_mode=True)
    art = quantize(src, tmp_path / "old", int8_embeddings=False, fmt="torch")
    manifest = json.loads((art / "manifest.json").read_text())
    del manifest["word_embeddings"]
    (art / "manifest.json").write_text(json.dumps(manifest))
    # Then it still loads, with the float table it holds
    loaded = load_artifact(art)
    assert loaded.model.encoder.embeddings.word_embeddings.weight.dtype == torch.float32


def test_unknown_or_mismatched_embedding_format_is_a_clear_load_error(tiny, tmp_path) -> None:
    art = quantize(tiny("src", char_mode=True), tmp_path / "art", fmt="torch")
    manifest = json.loads((art / "manifest.json").read_text())
    # A format this version does not know is named, not loaded as something else
    (art / "manifest.json").write_text(json.dumps({**manifest, "word_embeddings": "int4"}))
    with pytest.raises(ModelLoadError, match=r"manifest\.json: word_embeddings 'int4' is not 'float32' or 'int8-rowwise'"):
        load_artifact(art)
    # A manifest that says FP32 over a file holding INT8 rows names the tensor that does not fit
    (art / "manifest.json").write_text(json.dumps({**manifest, "word_embeddings": "float32"}))
    with pytest.raises(ModelLoadError, match=r"unexpected tensor.*word_embeddings\.scale"):
        load_artifact(art)


def test_write_back_gives_a_float_table_equal_to_the_int8_rows(tiny, tmp_path) -> None:
    src = tiny("src", char_mode=True)
    art = quantize(src, tmp_path / "art", fmt="torch")
    rows = load_artifact(art).model.encoder.embeddings.word_embeddings.dequantize()
    back = load_raner_dir(dequantize_artifact(art, tmp_path / "back"))
    table = back.model.encoder.embeddings.word_embeddings
    assert type(table) is nn.Embedding and torch.equal(table.weight, rows)


def test_quantize_cli_writes_the_onnx_artifact_workers_serve_and_nothing_else(tiny, tmp_path) -> None:
    from worker.model.cli import model
    from worker.tagger.loading import load_tagger
    from worker.tagger.onnx_model import is_onnx_artifact

    src = tiny("src", char_mode=True)
    got = CliRunner().invoke(model, ["quantize", str(src), "--out", str(tmp_path / "a")])
    assert got.exit_code == 0, got.output
    assert is_onnx_artifact(tmp_path / "a") and "model.onnx" in got.output
    assert load_tagger(tmp_path / "a").labels == load_raner_dir(src).labels
    # the torch-only flags are gone: one serving format
    for flag in (["--format", "torch"], ["--float-embeddings"], ["--keep-float", "encoder.layer.0.output.dense"]):
        got = CliRunner().invoke(model, ["quantize", str(src), "--out", str(tmp_path / "b"), *flag])
        assert got.exit_code == 2 and "No such option" in got.output, got.output
