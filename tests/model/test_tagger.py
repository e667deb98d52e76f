"""Tagger: long documents, window boundaries, blank input, deadline, batching invariance."""

from __future__ import annotations

import time

import pytest

from worker.tagger.errors import DeadlineExceeded
from worker.model.torch_tagger import load_torch_tagger

FILLER = "我们的政府委员会在天津说到了"  # no rule characters: all O


def _filler(n: int) -> str:
    return (FILLER * (n // len(FILLER) + 1))[:n]


def test_rule_model_tags_rule_chars(rule_dir) -> None:
    got = load_torch_tagger(rule_dir, int8=False, max_length=64).annotate(["我说王小明在北京。"])[0]
    assert [(e.start, e.end, e.label, e.text) for e in got] == [(2, 5, "PER", "王小明"), (6, 8, "LOC", "北京")]
    assert all(0.9 < e.score <= 1.0 for e in got)


def test_entity_at_char_8000_of_10000_is_found(rule_dir) -> None:
    text = _filler(8000) + "王小明" + _filler(1997)
    got = load_torch_tagger(rule_dir, int8=True, max_length=64, overlap=16).annotate([text])[0]
    assert [(e.start, e.end, e.text) for e in got] == [(8000, 8003, "王小明")]


def test_entity_straddling_window_boundary_found_once(rule_dir) -> None:
    tagger = load_torch_tagger(rule_dir, int8=False, max_length=64, overlap=16)
    # windows of 62 chars: the first ends at 62, so an entity at 60..63 straddles the cut
    assert tagger.windows(_filler(200))[0].end == 62
    text = _filler(60) + "王小明" + _filler(137)
    got = tagger.annotate([text])[0]
    assert [(e.start, e.end, e.label, e.text) for e in got] == [(60, 63, "PER", "王小明")]


def test_offsets_exact_with_emoji_crlf_spaces_in_both_modes(tmp_path) -> None:
    from conftest import RULES, make_rule_model

    text = "😀\r\n 王小明 ＡＢ１北京 abc 2023 " * 30
    for char_mode in (True, False):
        d = make_rule_model(tmp_path / f"m{char_mode}", RULES, char_mode=char_mode)
        got = load_torch_tagger(d, int8=False, max_length=40, overlap=8).annotate([text])[0]
        assert len(got) == 60
        assert all(text[e.start : e.end] == e.text and e.text in ("王小明", "北京") for e in got)


def test_blank_texts_give_empty_lists_and_batching_does_not_change_output(tiny) -> None:
    d = tiny("w", scheme="BIOES")
    texts = ["", "   \r\n", "这与温岭市新河镇的一个神秘的传说有关。" * 7, "北京大学和清华大学在北京", "王"]
    tagger = load_torch_tagger(d, int8=True, max_length=48)
    together = tagger.annotate(texts)
    alone = [tagger.annotate([t])[0] for t in texts]
    reversed_ = tagger.annotate(texts[::-1])[::-1]
    assert together[:2] == [[], []]
    assert together == alone == reversed_  # scores included: a text's entities depend on it alone


def test_deadline_in_the_past_raises(tiny) -> None:
    tagger = load_torch_tagger(tiny("w"), int8=False, max_length=48)
    with pytest.raises(DeadlineExceeded):
        tagger.annotate(["北京"], deadline=time.monotonic() - 1)


def test_heap_is_trimmed_between_windows_at_most_every_interval(rule_dir, monkeypatch) -> None:
    from worker.tagger import tagger as tagger_mod

    calls: list[float] = []
    monkeypatch.setattr(tagger_mod, "trim", lambda: calls.append(time.monotonic()) or True)
    texts = [_filler(300) + "王小明" for _ in range(6)]  # 6 docs x 5 windows of 62 chars
    tagger = load_torch_tagger(rule_dir, int8=False, max_length=64, overlap=16)
    n_batches = len([it for doc, t in enumerate(texts) for it in tagger._items(doc, t)])  # one run per window
    assert n_batches >= 20
    # With no interval: after every window, plus once at the end of the call
    tagger.trim_interval = 0.0
    got = tagger.annotate(texts)
    assert len(calls) == n_batches + 1
    # With a long interval: only at the end of the call, and the output is the same
    calls.clear()
    tagger.trim_interval = 3600.0
    assert tagger.annotate(texts) == got and len(calls) == 1
    # And never when the tagger is told not to
    calls.clear()
    tagger.trim_interval = None
    tagger.annotate(texts)
    assert calls == []


def test_multi_file_evaluate_sums_counts_per_file_and_averages_them(tmp_path) -> None:
    from storage.core.domain import Entity
    from worker.model.evaluate import evaluate_files

    # Given two gold files and a tagger whose predictions are fixed by hand
    (tmp_path / "a.txt").write_text("李\tB-PER\n明\tI-PER\n在\tO\n京\tB-LOC\n\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("上\tB-ORG\n海\tI-ORG\n\n王\tB-PER\n\n", encoding="utf-8")
    preds = {"李明在京": [Entity(0, 2, "PER", "李明", 1.0), Entity(3, 4, "ORG", "京", 1.0)],  # 1 of 2 right
             "上海": [Entity(0, 2, "ORG", "上海", 1.0)], "王": []}  # 1 right, 1 missed

    class Fixed:
        def annotate(self, texts, **_):
            return [preds[t] for t in texts]

    got = evaluate_files(Fixed(), [tmp_path / "a.txt", tmp_path / "b.txt"])  # type: ignore[arg-type]
    a, b = got["files"][str(tmp_path / "a.txt")], got["files"][str(tmp_path / "b.txt")]
    # Then each file has its own micro counts and the macro average is their mean
    assert (a["precision"], a["recall"], a["f1"]) == (0.5, 0.5, 0.5)
    assert (b["precision"], b["recall"]) == (1.0, 0.5) and abs(b["f1"] - 2 / 3) < 1e-12
    assert a["per_type"]["LOC"]["support"] == 1 and a["per_type"]["ORG"]["precision"] == 0.0
    assert abs(got["macro_f1"] - (0.5 + 2 / 3) / 2) < 1e-12 and got["macro_precision"] == 0.75
