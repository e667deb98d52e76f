"""The shipped default model tags sentences written for this test as expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

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


FILLER = "记者从现场了解到今天的会议在这里举行大家都很满意并且认为很有意义"


@pytest.fixture(scope="module")
def small_windows():
    # Windows of 16 characters with 4 shared: every few characters is a window edge
    return load_tagger(DEFAULT_MODEL, max_length=18, overlap=4)


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["瑞丰数码科技", "小明哥", "北京", "张伟"]), min_size=1, max_size=4),
       st.lists(st.integers(0, len(FILLER)), min_size=4, max_size=4))
def test_forced_terms_are_one_entity_with_exact_offsets_across_window_edges(small_windows, terms: list[str],
                                                                          cuts: list[int]) -> None:
    from storage.core.lexicon import Term
    from storage.core.settings import Settings
    from worker.pipeline import annotate_text
    from worker.tagger.lexicon import Lexicon

    # Given random text holding forced terms at random places (often across a window edge)
    text = "".join(FILLER[:c] + t for c, t in zip(cuts, terms)) + FILLER[: cuts[-1] // 2]
    lexicon = Lexicon.build([Term("瑞丰数码科技", "ORG"), Term("小明哥", "PER"), Term("北京", "LOC"),
                             Term("记者", "PER", "block")])
    settings = Settings()
    plain = annotate_text(text, small_windows, settings)
    got = annotate_text(text, small_windows, settings, lexicon=lexicon)
    # Then each occurrence of a forced term is exactly one entity of its type, at its offsets
    for term, label in [("瑞丰数码科技", "ORG"), ("小明哥", "PER"), ("北京", "LOC")]:
        at = [i for i in range(len(text)) if text.startswith(term, i)]
        assert sorted((e.start, e.end) for e in got if e.text == term and e.label == label) == [
            (i, i + len(term)) for i in at]
        assert not any(e.start < i + len(term) and i < e.end and (e.start, e.end) != (i, i + len(term))
                       for i in at for e in got)
    # blocked texts never come out, every offset reproduces its text, and the model's entities away
    # from the terms are those of the run without the dictionary
    assert all(text[e.start:e.end] == e.text for e in got) and not any(e.text == "记者" for e in got)
    assert [e for e in got if e.source == "model"] == [
        e for e in plain if e.text != "记者" and not any(
            f.source != "model" and f.start < e.end and e.start < f.end for f in got)]


def test_entities_and_scores_do_not_depend_on_what_a_text_is_decoded_with(tagger, monkeypatch) -> None:
    # Given short texts, a blank one and a long one of several windows, on the shipped model
    long_text = "".join(CASES) * 12
    texts = list(CASES) + ["  ", long_text] + list(CASES)[::-1]
    assert len(tagger.windows(long_text)) > 3
    # When they are tagged together, one by one, in reverse, and with decode batches of other sizes
    together = tagger.annotate(texts)
    alone = [tagger.annotate([t])[0] for t in texts]
    reverse = tagger.annotate(texts[::-1])[::-1]
    import worker.tagger.tagger as tagger_module

    other_batches = []
    for size in (1, 300):  # positions: every window alone; a few windows of different lengths at a time
        monkeypatch.setattr(tagger_module, "DECODE_TOKENS", size)
        other_batches.append(tagger.annotate(texts))
    # Then every text gets the same entities with the same scores, to the last bit
    assert together == alone == reverse == other_batches[0] == other_batches[1]
    assert sum(map(len, together)) > 100
