"""The shipped default model tags sentences written for this test as expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.core.settings import DEFAULT_MODEL
from worker.tagger.loading import load_tagger

CASES = {
    "李明在北京的清华大学工作。": {("李明", "PER"), ("北京", "LOC"), ("清华大学", "ORG")},
    "王小红是复旦大学的教授，她出生在江苏省南京市。": {
        ("王小红", "PER"), ("复旦大学", "ORG"), ("江苏省", "LOC"), ("南京市", "LOC")},
    "中国人民银行决定下调存款准备金率。": {("中国人民银行", "ORG")},
    "记者张伟从广州报道：联合国秘书长安南今天抵达日本东京。": {
        ("张伟", "PER"), ("广州", "LOC"), ("联合国", "ORG"), ("安南", "PER"), ("日本", "LOC"), ("东京", "LOC")},
    # Off news: a social-media post, two resume lines
    "今天跟张伟去成都吃火锅了，好开心😀": {("张伟", "PER"), ("成都", "LOC")},
    "@王小明 明天一起去北京看升旗吧！#国庆#": {("王小明", "PER"), ("北京", "LOC")},
    "王建国，男，1965年出生，研究生学历，现任中国石油天然气集团公司副总经理。": {
        ("王建国", "PER"), ("中国石油天然气集团公司", "ORG")},
    "刘志强先生，1972年出生，本科学历，曾任招商银行深圳分行行长。": {("刘志强", "PER"), ("招商银行深圳分行", "ORG")},
}


@pytest.fixture(scope="module")
def tagger():
    return load_tagger(DEFAULT_MODEL)


def test_shipped_artifact_is_complete() -> None:
    manifest = json.loads((Path(DEFAULT_MODEL) / "manifest.json").read_text())
    assert manifest["mode"] == "char" and manifest["num_labels"] == 7


@pytest.mark.parametrize("text", list(CASES))
def test_shipped_model_finds_expected_entities(tagger, text: str) -> None:
    found = tagger.annotate([text])[0]
    assert {(e.text, e.label) for e in found} == CASES[text]
    assert all(text[e.start:e.end] == e.text for e in found)


def test_shipped_model_tags_an_address_as_places(tagger) -> None:
    # Corpora disagree on addresses (MSRA splits province/city/district, CLUENER tags the whole
    # address): either way every character of the place part is inside a LOC, and nothing else
    text = "收货地址：浙江省杭州市西湖区文三路90号，收件人李娜。"
    found = tagger.annotate([text])[0]
    place = range(text.index("浙江省"), text.index("西湖区") + 3)
    assert all(any(e.label == "LOC" and e.start <= i < e.end for e in found) for i in place)
    assert {(e.text, e.label) for e in found if e.label != "LOC"} == {("李娜", "PER")}


def test_traditional_text_folded_gets_the_simplified_entities_in_its_own_characters(tagger) -> None:
    from storage.core.fold import _table, fold
    from storage.core.settings import Settings
    from worker.pipeline import annotate_text

    # Given each case written in Traditional characters (the fold table read backwards, where one
    # Traditional character stands for the Simplified one)
    backwards: dict[int, list[int]] = {}
    for trad, simp in _table()[0].items():
        backwards.setdefault(simp, []).append(trad)
    to_traditional = {s: t[0] for s, t in backwards.items() if len(t) == 1}
    settings = Settings()
    for text in CASES:
        traditional = text.translate(to_traditional)
        assert traditional != text and fold(traditional) == text
        # When it is tagged as a job does (folded), Then the spans are those of the Simplified text,
        # each holding the Traditional document's own characters
        got = annotate_text(traditional, tagger, settings, folded=True)
        want = annotate_text(text, tagger, settings)
        assert [(e.start, e.end, e.label) for e in got] == [(e.start, e.end, e.label) for e in want]
        assert [e.text for e in got] == [traditional[e.start:e.end] for e in want]
