"""Recovering a trainable FP32 BERT-CRF from an ONNX INT8 artifact (worker/model/from_onnx.py).

On the shipped model: the recovered torch model's emissions, Viterbi paths and entities against
the onnxruntime session's. On tiny artifacts: an FP32 graph round-trips every weight (smoothing
folded back out), bad inputs are named, and ``train --init ARTIFACT`` runs and resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from storage.core.settings import DEFAULT_MODEL
from worker.model.from_onnx import INIT_DIR, PROVENANCE, recover_raner_dir, resolve_init
from worker.tagger.onnx_model import load_onnx_model
from worker.tagger.viterbi import viterbi_numpy

TinyFactory = Callable[..., Path]

SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "news.jsonl"

# Written for this test: news in the style of MSRA / People's Daily, names, places, organisations,
# an emoji, digits and Latin letters, full-width forms, a resume line and a social-media post.
SENTENCES = [
    "新华社北京3月5日电，国务院总理李强在人民大会堂作政府工作报告。",
    "中国人民银行决定自下月起下调金融机构存款准备金率0.5个百分点。",
    "记者张伟从广州报道：联合国秘书长古特雷斯今天抵达日本东京。",
    "王小红是复旦大学的教授，她出生在江苏省南京市鼓楼区。",
    "今天跟李明去成都吃火锅了，好开心😀😀",
    "Apple公司CEO库克于2023年9月访问上海，并会见了上海市市长。",
    "华为技术有限公司发布了Mate60手机，售价6999元。",
    "据美联社报道，美国总统拜登在白宫会见了德国总理朔尔茨。",
    "刘志强先生，1972年出生，本科学历，曾任招商银行深圳分行行长。",
    "@王小明 明天一起去北京天安门看升旗吧！#国庆#",
    "浙江大学与杭州市人民政府签署了战略合作协议。",
    "ＡＢＣ公司在上海浦东新区设立了亚太研发中心。",
    "湖南省长沙市岳麓区的岳麓书院是中国四大书院之一。",
    "国家足球队主教练伊万科维奇公布了最新一期集训名单，武磊入选。",
    "第19届亚运会于2023年9月23日在杭州开幕，共有45个国家和地区参加。",
    "世界卫生组织总干事谭德塞表示，全球疫情形势依然严峻。",
    "北京时间昨晚，NBA湖人队以112比108战胜勇士队，詹姆斯得到30分。",
    "中共中央总书记在河北省雄安新区考察调研。",
    "小张在淘宝上买了一台联想ThinkPad笔记本电脑。",
    "欧洲联盟委员会主席冯德莱恩抵达布鲁塞尔参加峰会。",
]


def _path(crf: tuple[np.ndarray, ...], emissions: np.ndarray) -> np.ndarray:
    start, end, trans = crf
    return np.asarray(viterbi_numpy(start, end, trans, emissions[None], np.array([len(emissions)]))[0])


def _window_ids(model: Any, text: str) -> np.ndarray:
    vocab = model.char_vocab
    got = vocab.text_ids(text)
    assert got.counts is None, "these sentences have one token per character"
    return np.concatenate([[vocab.cls], got.ids, [vocab.sep]]).astype(np.int64)


@pytest.fixture(scope="module")
def recovered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("recovered") / "raner"
    started = time.monotonic()
    recover_raner_dir(Path(DEFAULT_MODEL), out)
    return out, time.monotonic() - started


def test_shipped_model_recovers_to_torch_emissions_and_paths_that_match_onnx(recovered: tuple[Path, float]) -> None:
    from worker.model.train import init_model

    out, seconds = recovered
    assert seconds < 60
    onnx = load_onnx_model(DEFAULT_MODEL)
    # Given the recovered RaNER dir loaded the way training loads an --init (every weight, head and CRF)
    model = init_model(str(out), len(onnx.labels), None).eval()
    for ours, theirs in zip((model.crf.start_transitions, model.crf.end_transitions, model.crf.transitions),
                            onnx.crf):
        assert np.array_equal(ours.detach().numpy(), theirs)
    diffs: list[np.ndarray] = []
    agree, chars = 0, 0
    for text in SENTENCES:
        ids = _window_ids(onnx, text)
        # When both run the same window
        want = onnx.token_emissions(ids)[1:-1]
        with torch.no_grad():
            x = torch.from_numpy(ids)[None]
            got = model.emissions(x, torch.ones_like(x), torch.arange(1, len(ids) - 1)[None])[0].numpy()
        diffs.append(np.abs(got - want).ravel())
        a = _path(onnx.crf, want)
        b = _path(onnx.crf, got)
        agree += int((a == b).sum())
        chars += len(a)
    d = np.concatenate(diffs)
    print(f"|emission difference| mean {d.mean():.3f}, p99 {np.quantile(d, 0.99):.3f}, max {d.max():.3f}; "
          f"Viterbi tags agree on {agree}/{chars} chars")
    # Then the emissions differ only by INT8 activation rounding: measured mean 0.107, p99 0.49,
    # max 1.32 (on "Mate60"), against emission magnitudes of about 4.7 on average and up to 11
    assert d.mean() < 0.2 and np.quantile(d, 0.99) < 1.0 and d.max() < 2.5
    # And the Viterbi tags agree on at least 99 % of the characters
    assert agree >= 0.99 * chars, (agree, chars)


def test_shipped_model_recovered_finds_the_onnx_entities(recovered: tuple[Path, float]) -> None:
    from worker.model.torch_tagger import load_torch_tagger
    from worker.tagger.loading import load_tagger

    out, _ = recovered
    texts = SENTENCES + [json.loads(line)["text"] for line in SAMPLES.read_text(encoding="utf-8").splitlines()[:60]]
    onnx = load_tagger(DEFAULT_MODEL).annotate(texts)
    fp32 = load_torch_tagger(out, int8=False).annotate(texts)
    keys = [[{(e.start, e.end, e.label) for e in doc} for doc in found] for found in (onnx, fp32)]
    same_docs = sum(a == b for a, b in zip(*keys))
    union = sum(len(a | b) for a, b in zip(*keys))
    common = sum(len(a & b) for a, b in zip(*keys))
    print(f"identical entity sets in {same_docs}/{len(texts)} texts; {common}/{union} entities shared")
    assert union > 300
    assert same_docs >= 0.9 * len(texts) and common >= 0.98 * union, (same_docs, common, union)


CALIBRATION = ["李明在北京工作。", "上海市的复旦大学", "新华社记者报道", "王小红在南京的清华大学。"] * 4


def _randomize(net: torch.nn.Module, seed: int) -> None:
    """Every tensor distinct (a fresh BERT's zero biases and unit LayerNorms are all alike, and the
    exporter de-duplicates equal initializers), so a tensor recovered into the wrong slot shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def test_fp32_graph_gives_back_every_weight_with_the_smoothing_folded_out(tiny: TinyFactory, tmp_path: Path) -> None:
    from worker.model.checkpoint import load_raner_dir
    from worker.model.onnx_export import export_onnx
    from worker.model.smooth import smooth_ffn

    # Given a model with random weights everywhere, smoothed, exported as an FP32 ONNX graph
    loaded = load_raner_dir(tiny("src", char_mode=True, pooler=False, position_ids=False))
    net = loaded.model
    _randomize(net, seed=3)
    reference = {k: v.detach().clone() for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(4)
    width = net.config.intermediate_size
    amax = [torch.rand(width, generator=gen) * 10 + 0.1 for _ in range(net.config.num_hidden_layers)]
    smooth_ffn(net, amax, 0.8)
    art = export_onnx(loaded, tmp_path / "art", int8=False, smoothing={"alpha": 0.8, "texts": 1})
    # When it is recovered
    back = recover_raner_dir(art, tmp_path / "back")
    state = torch.load(back / "pytorch_model.bin", weights_only=True)
    # Then every weight is the original, unsmoothed one; the token-type table is row 0 in every row
    for key, want in reference.items():
        got = state[key]
        if key.endswith("token_type_embeddings.weight"):
            want = want[0].expand_as(got)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), key
    assert set(state) - {k for k in state if k.endswith(("position_ids", "token_type_ids"))} == set(reference)
    prov = json.loads((back / PROVENANCE).read_text())
    assert prov["int8"] is False and prov["smoothing_folded"] == {"alpha": 0.8, "texts": 1}


def test_int8_graph_recovers_to_weights_that_tag_like_the_session(tiny: TinyFactory, tmp_path: Path) -> None:
    from worker.model.artifact import quantize
    from worker.model.checkpoint import load_raner_dir
    from worker.model.torch_engine import TorchEngine

    # Given a tiny smoothed INT8 ONNX artifact
    art = quantize(tiny("src", char_mode=True, scale=8.0, seed=5), tmp_path / "art", calibration=CALIBRATION)
    # When it is recovered and run as FP32 torch (the tiny model's activations round to INT8 with
    # little loss, so this checks the dequantization, Q/K/V split and smoothing fold closely)
    back = recover_raner_dir(art, tmp_path / "back")
    onnx, torch_fp32 = load_onnx_model(art), TorchEngine(load_raner_dir(back))
    assert all(np.array_equal(a, b) for a, b in zip(onnx.crf, torch_fp32.crf))
    agree = chars = 0
    for text in CALIBRATION[:4] + ["张伟和刘华在广州的人民银行工作。", "中国新华社北京电"]:
        ids = _window_ids(onnx, text)
        want, got = onnx.token_emissions(ids)[1:-1], torch_fp32.token_emissions(ids)[1:-1]
        # (measured: at most 0.003 against emissions up to 24; the FP32 source is 0.07-0.09 away)
        assert np.abs(want - got).max() < 0.05
        paths = [_path(onnx.crf, e) for e in (want, got)]
        agree += int((paths[0] == paths[1]).sum())
        chars += len(want)
    # Then the Viterbi tags agree
    assert agree >= 0.99 * chars, (agree, chars)


def test_what_is_not_an_onnx_artifact_is_named(tiny: TinyFactory, tmp_path: Path) -> None:
    from worker.model.artifact import quantize
    from worker.model.train import init_model

    src = tiny("src", char_mode=True)
    with pytest.raises(ValueError, match=r"no manifest\.json: not a shiti ONNX artifact"):
        recover_raner_dir(src, tmp_path / "a")
    with pytest.raises(ValueError, match="not a directory"):
        recover_raner_dir(tmp_path / "nowhere", tmp_path / "b")
    torch_art = quantize(src, tmp_path / "torch", fmt="torch")
    with pytest.raises(ValueError, match=r"manifest kind is .* only a shiti ONNX INT8 BERT-CRF"):
        recover_raner_dir(torch_art, tmp_path / "c")
    # A RaNER dir as --init is used as it is; an artifact handed straight to init_model is refused by name
    assert resolve_init(src, tmp_path / "run") == src
    art = quantize(src, tmp_path / "onnx")
    with pytest.raises(ValueError, match="is an ONNX artifact: recover"):
        init_model(str(art), 7, None)
    (art / "crf.json").unlink()
    with pytest.raises(ValueError, match=r"missing \['crf\.json'\]"):
        recover_raner_dir(art, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def _write_bio(path: Path, n: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    people, places, orgs = ["李明", "王小红", "张华", "刘东"], ["北京", "上海", "南京", "广州"], ["清华大学", "新华社"]
    lines = []
    for _ in range(n):
        for text, typ in ((rng.choice(people), "PER"), ("在", None), (rng.choice(places), "LOC"), ("的", None),
                          (rng.choice(orgs), "ORG"), ("工作。", None)):
            lines += [f"{ch}\t{'O' if typ is None else ('B-' if i == 0 else 'I-') + typ}" for i, ch in enumerate(text)]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_train_from_an_onnx_artifact_recovers_it_once_and_resumes(tiny: TinyFactory, tmp_path: Path) -> None:
    from worker.model.artifact import quantize
    from worker.model.train import TrainConfig, train

    # Given an INT8 ONNX artifact as --init
    art = quantize(tiny("src", char_mode=True), tmp_path / "art", calibration=CALIBRATION)
    data, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    _write_bio(data, 40, seed=1)
    _write_bio(dev, 8, seed=2)
    run = tmp_path / "run"
    cfg = TrainConfig(init=str(art), train=[str(data)], dev=str(dev), out=str(run), epochs=20, warmup=2,
                      batch_tokens=256, max_words=62, eval_every=3, ckpt_every=2, threads=1, bf16=False)
    # When a few steps run
    first = train(cfg, max_steps=3)
    recovered = run / INIT_DIR / "pytorch_model.bin"
    prov = json.loads((run / INIT_DIR / PROVENANCE).read_text())
    assert first["step"] == 3 and (run / "best" / "pytorch_model.bin").exists()
    assert prov["artifact"] == str(art.resolve()) and prov["int8"] is True
    assert json.loads((run / "config.json").read_text())["init_dir"] == str(run / INIT_DIR)
    # Then the run's vocabulary is the artifact's, and resuming reuses the recovery (not rewritten)
    assert (run / "best" / "vocab.txt").read_bytes() == (art / "vocab.txt").read_bytes()
    stamp = recovered.stat().st_mtime_ns
    again = train(TrainConfig(init=str(art), train=[str(data)], dev=str(dev), out=str(run), threads=1),
                  resume=True, max_steps=2)
    assert again["step"] == 5 and recovered.stat().st_mtime_ns == stamp
    # And an artifact changed since (here its CRF) is recovered anew, not reused
    crf = json.loads((art / "crf.json").read_text())
    crf["start"][0] += 1.0
    (art / "crf.json").write_text(json.dumps(crf))
    assert resolve_init(art, run) == run / INIT_DIR
    state = torch.load(recovered, weights_only=True)
    assert float(state["crf.start_transitions"][0]) == pytest.approx(crf["start"][0])
