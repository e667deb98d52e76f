"""FFN smoothing for all-INT8 encoders: same FP32 function, smaller INT8 error, artifact round trip."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from test_artifact import _keys, _sample_texts

from worker.model.artifact import load_artifact, quantize, quantize_model
from worker.model.checkpoint import load_raner_dir
from worker.model.torch_tagger import load_torch_tagger, torch_tagger
from worker.model.smooth import calibration_texts, ffn_input_absmax, smooth_ffn, smoothing_scales


def _emissions(loaded, texts: list[str]) -> torch.Tensor:
    tagger = torch_tagger(loaded, max_length=64)
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = torch.from_numpy(tagger._items(0, text)[0].ids)[None]
            rows.append(loaded.model.emissions(ids, None, None)[0])
    return torch.cat(rows)


def _with_outlier_channel(loaded, factor: float = 40.0) -> None:
    """Make channel 0 of every FFN's hidden activation ``factor`` x larger (as trained BERTs have)."""
    with torch.no_grad():
        for layer in loaded.model.encoder.encoder.layer:
            layer.intermediate.dense.weight[0] *= factor
            layer.intermediate.dense.bias[0] = abs(layer.intermediate.dense.bias[0]) * factor
            layer.output.dense.weight[:, 0] /= factor


def _calibrated(loaded, texts: list[str]) -> list[torch.Tensor]:
    tagger = torch_tagger(loaded, max_length=64)
    return ffn_input_absmax(loaded.model, lambda: tagger.annotate(texts))


def test_smoothing_keeps_the_fp32_function(tiny) -> None:
    loaded = load_raner_dir(tiny("src", char_mode=True, scale=8.0))
    _with_outlier_channel(loaded)
    texts = _sample_texts(20)
    before = _emissions(loaded, texts)
    amax = _calibrated(loaded, _sample_texts(50, seed=5))
    assert len(amax) == len(loaded.model.encoder.encoder.layer)
    assert all(m[0] > 5 * m[1:].median() for m in amax)  # the outlier is seen
    smooth_ffn(loaded.model, amax, alpha=0.8)
    assert torch.allclose(_emissions(loaded, texts), before, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="already smoothed"):
        smooth_ffn(loaded.model, amax)


def test_smoothing_shrinks_all_int8_error_on_outlier_activations(tiny) -> None:
    src = tiny("src", char_mode=True, scale=8.0, seed=3)
    texts = _sample_texts(40, seed=2)
    calib = _sample_texts(60, seed=7)

    def int8_error(smooth: bool) -> float:
        loaded = load_raner_dir(src)
        _with_outlier_channel(loaded)
        ref = _emissions(loaded, texts)
        if smooth:
            smooth_ffn(loaded.model, _calibrated(loaded, calib), alpha=0.8)
        # FP32 embeddings: the error measured is the Linears' activation rounding alone
        quantize_model(loaded.model, int8_embeddings=False)
        return float((_emissions(loaded, texts) - ref).abs().mean())

    plain, smoothed = int8_error(False), int8_error(True)
    assert smoothed < 0.5 * plain, (smoothed, plain)


def test_smoothing_scales_follow_the_formula_and_check_alpha() -> None:
    amax = torch.tensor([16.0, 1.0, 0.0])
    weight = torch.tensor([[1.0, -4.0, 2.0], [-0.5, 1.0, 0.0]])
    s = smoothing_scales(amax, weight, 0.5)
    assert torch.allclose(s[:2], torch.tensor([4.0 / 1.0, 1.0 / 2.0]))
    assert s[2] > 0  # a silent channel gets a finite, positive scale
    assert torch.allclose(smoothing_scales(amax, weight, 1.0)[:2], amax[:2])
    with pytest.raises(ValueError, match="alpha"):
        smoothing_scales(amax, weight, 1.5)


@pytest.mark.parametrize("char_mode", [False, True])
def test_smoothed_artifact_round_trips_and_dequantizes_to_plain_bert(tiny, tmp_path, char_mode: bool) -> None:
    from worker.model.raner_dir import dequantize_artifact

    src = tiny("src", scheme="BIOES", scale=8.0, seed=11, char_mode=char_mode)
    calib = _sample_texts(50, seed=9)
    art = quantize(src, tmp_path / "art", max_length=64, calibration=calib, smooth_alpha=0.7, fmt="torch")
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["smoothing"] == {"alpha": 0.7, "texts": 50} and manifest["float_modules"] == []
    # The artifact loads its scales and tags exactly like smoothing + quantizing in memory
    loaded = load_artifact(art, verify=True)
    assert all(layer.intermediate.out_scale is not None for layer in loaded.model.encoder.encoder.layer)
    ref = load_raner_dir(src)
    smooth_ffn(ref.model, _calibrated(ref, calib), alpha=0.7)
    quantize_model(ref.model)
    texts = _sample_texts(60, seed=4)
    assert torch_tagger(loaded, max_length=64).annotate(texts) == torch_tagger(ref, max_length=64).annotate(texts)
    # Written back as FP32, the scales are folded out: a plain RaNER dir that tags like the source
    back = dequantize_artifact(art, tmp_path / "back")
    plain = load_raner_dir(back)
    assert all(layer.intermediate.out_scale is None for layer in plain.model.encoder.encoder.layer)
    a = _keys(load_torch_tagger(src, int8=False, max_length=64).annotate(_sample_texts(300, seed=3)))
    b = _keys(torch_tagger(plain, max_length=64).annotate(_sample_texts(300, seed=3)))
    union = sum(len(x | y) for x, y in zip(a, b))
    same = sum(len(x & y) for x, y in zip(a, b))
    assert union > 300 and same / union >= 0.97, (same, union)
    # An unsmoothed artifact records no smoothing
    assert json.loads((quantize(src, tmp_path / "plain", fmt="torch") / "manifest.json").read_text())["smoothing"] is None


def test_calibration_texts_from_bio_or_plain_text(tmp_path) -> None:
    bio = tmp_path / "train.bio"
    bio.write_text("李\tB-PER\n明\tI-PER\n\n北\tB-LOC\n京\tI-LOC\n\n好\tO\n", encoding="utf-8")
    assert calibration_texts(bio) == ["李明", "北京", "好"]
    assert calibration_texts(bio, limit=2) == ["李明", "北京"]
    txt = tmp_path / "train.txt"
    txt.write_text("\n李明在北京工作。\n  \n新华社报道\n", encoding="utf-8")
    assert calibration_texts(txt) == ["李明在北京工作。", "新华社报道"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="no calibration text"):
        calibration_texts(empty)
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("北京\n".encode("gb18030"))
    with pytest.raises(ValueError, match=r"latin1\.txt: not UTF-8 text \(byte 0"):
        calibration_texts(binary)
    broken = tmp_path / "broken.bio"
    broken.write_text("李\tB-PER\n明明\tI-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.bio:2: expected 'CHAR<TAB>TAG'"):
        calibration_texts(broken)


def test_quantize_cli_smooths_on_calibration_text(tiny, tmp_path) -> None:
    from worker.model.cli import model

    src = tiny("src", char_mode=True)
    txt = tmp_path / "calib.txt"
    txt.write_text("\n".join(_sample_texts(30)) + "\n", encoding="utf-8")
    out = tmp_path / "art"
    got = CliRunner().invoke(model, ["quantize", str(src), "--out", str(out), "--calibration", str(txt),
                                     "--calibration-texts", "10", "--smooth-alpha", "0.9"])
    assert got.exit_code == 0, got.output
    assert json.loads((out / "manifest.json").read_text())["smoothing"] == {"alpha": 0.9, "texts": 10}
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    got = CliRunner().invoke(model, ["quantize", str(src), "--out", str(tmp_path / "x"), "--calibration", str(empty)])
    assert got.exit_code == 1 and "no calibration text" in got.output
    got = CliRunner().invoke(model, ["quantize", str(src), "--out", str(tmp_path / "y"), "--calibration",
                                     str(txt), "--smooth-alpha", "2"])
    assert got.exit_code == 2 and "smooth-alpha" in got.output
