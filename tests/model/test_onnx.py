"""ONNX artifacts: export, parity with torch, batch invariance on the shipped model, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.core.settings import DEFAULT_MODEL
from worker.tagger.errors import ModelLoadError
from worker.tagger.loading import load_tagger
from worker.tagger.onnx_model import ONNX_FILES, is_onnx_artifact, load_onnx_model, sha256_file
from worker.tagger.tagger import Tagger

SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "news.jsonl"


def _keys(found):
    return [[(e.start, e.end, e.label) for e in doc] for doc in found]


def _rehash(art: Path) -> None:
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(art / name) for name in ONNX_FILES}
    (art / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def shipped() -> Tagger:
    return load_tagger(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts = [json.loads(line)["text"] for line in SAMPLES.read_text(encoding="utf-8").splitlines()[:40]]
    # Long documents (several windows) and short, emoji and CRLF ones next to the news.
    return [*texts, "".join(texts[:6]), "李明😀在\r\n北京。", "王", "  ", "ＡＢＣ公司在上海浦东新区。"]


def test_the_default_model_is_an_onnx_artifact_served_without_torch_modules(shipped) -> None:
    assert is_onnx_artifact(DEFAULT_MODEL)
    assert type(shipped.engine).__name__ == "OnnxModel"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_shipped_model_entities_do_not_depend_on_batching(shipped, corpus, data) -> None:
    # Given a reference: every document tagged on its own
    reference = getattr(test_shipped_model_entities_do_not_depend_on_batching, "_ref", None)
    if reference is None:
        reference = [shipped.annotate([t])[0] for t in corpus]
        test_shipped_model_entities_do_not_depend_on_batching._ref = reference  # type: ignore[attr-defined]
    # When the documents are tagged in a random order, in random chunks
    order = data.draw(st.permutations(range(len(corpus))))
    sizes = data.draw(st.lists(st.integers(1, 17), min_size=1, max_size=8))
    got: dict[int, list] = {}
    pos, k = 0, 0
    while pos < len(order):
        chunk = order[pos : pos + sizes[k % len(sizes)]]
        for i, ents in zip(chunk, shipped.annotate([corpus[i] for i in chunk])):
            got[i] = ents
        pos += len(chunk)
        k += 1
    # Then every document gets exactly the entities (and scores) it gets alone
    assert [got[i] for i in range(len(corpus))] == reference


def test_thread_count_does_not_change_entities(corpus) -> None:
    one = load_tagger(DEFAULT_MODEL, threads=1).annotate(corpus)
    two = load_tagger(DEFAULT_MODEL, threads=2).annotate(corpus)
    assert one == two and sum(map(len, one)) > 50


@pytest.mark.parametrize("char_mode", [True, False])
def test_onnx_path_tags_like_torch_and_modelscope(tiny, tmp_path, char_mode) -> None:
    from test_modelscope_parity import TEXTS

    from worker.model.artifact import quantize
    from worker.model.checkpoint import load_raner_dir
    from worker.model.onnx_export import export_onnx
    from worker.model.torch_tagger import load_torch_tagger

    # Given a RaNER checkpoint, its INT8 ONNX artifact and the same graph kept FP32
    src = tiny("src", char_mode=char_mode, scheme="BIOES")
    art = quantize(src, tmp_path / "onnx")
    assert is_onnx_artifact(art) and not (art / "model.pt").exists()
    fp32 = export_onnx(load_raner_dir(src), tmp_path / "fp32", int8=False)
    # Then the FP32 graph (export, tokenizer, windows, Viterbi, merge) finds exactly torch's spans
    # (which test_modelscope_parity holds equal to modelscope's pipeline), scores within 1e-4
    torch_fp32 = load_torch_tagger(src, int8=False, max_length=64).annotate(TEXTS)
    onnx_fp32 = load_tagger(fp32, max_length=64).annotate(TEXTS)
    assert _keys(onnx_fp32) == _keys(torch_fp32) and sum(map(len, onnx_fp32)) > 5
    assert all(abs(a.score - b.score) < 1e-4 for x, y in zip(onnx_fp32, torch_fp32) for a, b in zip(x, y))
    # And INT8 runs the same path: the artifact loads and tags every text with valid offsets
    onnx = load_tagger(art, max_length=64).annotate(TEXTS)
    assert all(t[e.start : e.end] == e.text for t, doc in zip(TEXTS, onnx) for e in doc)


def test_torch_artifact_exports_with_its_smoothing(tiny, tmp_path) -> None:
    from worker.model.artifact import quantize
    from worker.model.torch_tagger import load_torch_tagger

    # Given a smoothed torch artifact
    src = tiny("src", char_mode=True)
    calib = ["李明在北京工作。", "上海市的复旦大学", "新华社记者报道"] * 5
    torch_art = quantize(src, tmp_path / "torch", max_length=64, calibration=calib, fmt="torch")
    # When it is exported to ONNX
    art = quantize(torch_art, tmp_path / "onnx")
    manifest = json.loads((art / "manifest.json").read_text())
    # Then the smoothing is recorded and the windows tag alike (>= 99 % of windows identical)
    assert manifest["smoothing"] == json.loads((torch_art / "manifest.json").read_text())["smoothing"]
    texts = [f"{a}和{b}在{c}工作。" for a in ("李明", "王芳", "张伟") for b in ("刘洋", "陈静") for c in ("北京", "上海", "南京")]
    a = _keys(load_tagger(art, max_length=64).annotate(texts))
    b = _keys(load_torch_tagger(torch_art, max_length=64).annotate(texts))
    assert sum(x == y for x, y in zip(a, b)) >= 0.99 * len(texts)


def test_truncated_graph_is_named(tiny, tmp_path) -> None:
    from worker.model.artifact import quantize

    art = quantize(tiny("src"), tmp_path / "onnx")
    data = (art / "model.onnx").read_bytes()
    (art / "model.onnx").write_bytes(data[: len(data) // 3])
    # A file the manifest did not hash: named as changed
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 does not match"):
        load_onnx_model(art)
    # Even with the manifest rewritten to match, onnxruntime's refusal names the file
    _rehash(art)
    with pytest.raises(ModelLoadError, match=r"model\.onnx: onnxruntime cannot load it"):
        load_onnx_model(art)


def test_label_count_mismatch_is_named(tiny, tmp_path) -> None:
    from worker.model.artifact import quantize

    art = quantize(tiny("src"), tmp_path / "onnx")
    labels = json.loads((art / "labels.json").read_text())
    (art / "labels.json").write_text(json.dumps(labels[:-1]))
    _rehash(art)
    with pytest.raises(ModelLoadError, match=rf"emits {len(labels)} labels, labels.json has {len(labels) - 1}"):
        load_onnx_model(art)


def test_missing_file_and_missing_hash_are_named(tiny, tmp_path) -> None:
    from worker.model.artifact import quantize

    art = quantize(tiny("src"), tmp_path / "onnx")
    manifest = json.loads((art / "manifest.json").read_text())
    del manifest["files"]["crf.json"]
    (art / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"no sha256 for crf\.json"):
        load_onnx_model(art)
    _rehash(art)
    (art / "vocab.txt").unlink()
    with pytest.raises(ModelLoadError, match="missing vocab.txt"):
        load_onnx_model(art)
