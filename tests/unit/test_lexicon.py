"""User dictionaries: the file's checks (line number and reason, nothing half-read) and the rules
the worker applies (forced terms exact and alone, blocked ones gone, the rest untouched)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.core.domain import SOURCE_BOTH, SOURCE_DICT, SOURCE_MODEL, Entity
from storage.core.fold import fold
from storage.core.lexicon import (
    MAX_BYTES,
    LexiconError,
    Term,
    canonical,
    content_hash,
    parse,
    parse_canonical,
    types_of,
)
from worker.tagger.lexicon import Lexicon, apply, choose

LABELS = ("LOC", "ORG", "PER")


def _err(raw: bytes | str) -> LexiconError:
    with pytest.raises(LexiconError) as info:
        parse(raw, labels=LABELS)
    return info.value


def test_a_file_parses_to_canonical_entries_and_order_does_not_change_the_hash() -> None:
    a = parse("# places\n复旦大学\tORG\n张伟\tPER\tforce\t张 伟|Zhang Wei\n\n上海\t*\tblock\r\n", labels=LABELS)
    assert a == (Term("上海", "*", "block"), Term("复旦大学", "ORG"), Term("张伟", "PER", "force", ("张 伟", "Zhang Wei")))
    b = parse("\ufeff上海\t*\tblock\n张伟\tPER\t\t张 伟|Zhang Wei\n复旦大学\tORG\tFORCE\n".encode(), labels=LABELS)
    assert content_hash(canonical(a)) == content_hash(canonical(b))
    assert parse_canonical(canonical(a)) == a
    assert types_of(a) == ("ORG", "PER")


@pytest.mark.parametrize("raw, line, reason", [
    ("北京\tLOC\n上海\n", 2, "has no type"),
    ("北京\tLOC\n上海\t\n", 2, "has no type"),
    ("北京\tGPE\n", 1, "not one of the model's"),
    ("北京\tLO C\n", 1, "not an entity type name"),
    ("\tLOC\n", 1, "empty or whitespace"),
    ("   \tLOC\n", 1, "empty or whitespace"),
    ("北\x00京\tLOC\n", 1, "a NUL"),
    ("北\ud800京\tLOC\n", 1, "a lone surrogate"),
    ("北京\tLOC\tmaybe\n", 1, "neither force nor block"),
    ("北京\t*\n", 1, "needs one type"),
    ("北京\tLOC\tforce\ta\tb\n", 1, "5 tab-separated columns"),
    ("x" * 201 + "\tLOC\n", 1, "the limit is 200"),
    ("# only a comment\n\n", 0, "no entries"),
    ("北京\tLOC\n北京\tORG\n", 0, "forced as both"),
    ("北京\tLOC\n北京\tLOC\tblock\n", 0, "both forced and blocked"),
])
def test_a_bad_line_is_named_with_its_number_and_reason(raw: str, line: int, reason: str) -> None:
    err = _err(raw)
    assert err.line == line and reason in err.reason, str(err)


def test_bad_bytes_and_a_file_over_the_limit_are_refused() -> None:
    err = _err("北京\tLOC\n".encode() + b"\xff\xfe\tLOC\n")
    assert err.line == 2 and "not UTF-8" in err.reason
    err = _err(b"a\tLOC\n" * (MAX_BYTES // 6 + 1))
    assert err.line == 0 and "limit" in err.reason


def _lex(*terms: Term) -> Lexicon:
    return Lexicon.build(terms)


def test_forced_terms_win_overlaps_longest_then_earliest_and_model_entities_give_way() -> None:
    text = "北京大学的张伟和北京市民"
    lex = _lex(Term("北京", "LOC"), Term("北京大学", "ORG"), Term("学的张", "PER"))
    model = [Entity(0, 2, "LOC", "北京", 0.8), Entity(5, 7, "PER", "张伟", 0.9), Entity(8, 11, "LOC", "北京市", 0.7)]
    got = apply(text, text, model, lex)
    # 北京大学 (longest) beats 北京 and 学的张 inside/over it; the model's 北京 inside it gives way;
    # 北京 at 8 is forced and the model's 北京市 overlapping it gives way; 张伟 stays untouched.
    assert [(e.start, e.end, e.label, e.text, e.source) for e in got] == [
        (0, 4, "ORG", "北京大学", SOURCE_DICT), (5, 7, "PER", "张伟", SOURCE_MODEL), (8, 10, "LOC", "北京", SOURCE_DICT)]
    assert got[1] == model[1]


def test_a_model_entity_the_dictionary_agrees_with_is_one_entity_of_both() -> None:
    text = "张伟在上海"
    got = apply(text, text, [Entity(0, 2, "PER", "张伟", 0.6)], _lex(Term("张伟", "PER")))
    assert [(e.start, e.end, e.label, e.score, e.source) for e in got] == [(0, 2, "PER", 1.0, SOURCE_BOTH)]


def test_block_drops_the_exact_text_of_its_type_or_any_type() -> None:
    text = "苹果和苹果公司"
    model = [Entity(0, 2, "ORG", "苹果", 0.5), Entity(3, 5, "LOC", "苹果", 0.5), Entity(3, 7, "ORG", "苹果公司", 0.9)]
    assert [e.start for e in apply(text, text, model, _lex(Term("苹果", "ORG", "block")))] == [3, 3]
    assert [e.text for e in apply(text, text, model, _lex(Term("苹果", "*", "block")))] == ["苹果公司"]


def test_ascii_terms_match_only_whole_words_chinese_anywhere() -> None:
    text = "Li在Lisbon见到Li，IBM和IBMer"
    got = apply(text, text, [], _lex(Term("Li", "PER"), Term("IBM", "ORG")))
    assert [(e.start, e.text) for e in got] == [(0, "Li"), (11, "Li"), (14, "IBM")]


def test_the_fold_finds_simplified_entries_in_traditional_text_and_keeps_the_documents_characters() -> None:
    text = "記者在臺灣銀行"
    lex = Lexicon.build([Term("台湾银行", "ORG")], normalize=fold)
    (got,) = apply(text, fold(text), [], lex)
    assert (got.start, got.end, got.text) == (3, 7, "臺灣銀行")


CHARS = st.sampled_from(list("北京大学上海张伟的和在是中国银行abc 😀\r\n，"))
TEXTS = st.text(CHARS, max_size=60)
TERMS = st.lists(st.tuples(st.text(CHARS, min_size=1, max_size=5).filter(str.strip),
                           st.sampled_from(LABELS)), max_size=6, unique_by=lambda t: t[0])


@st.composite
def model_entities(draw: st.DrawFn, text: str) -> list[Entity]:
    out, at = [], 0
    while at < len(text):
        start = draw(st.integers(at, len(text)))
        end = draw(st.integers(start, min(len(text), start + 6)))
        if end > start:
            out.append(Entity(start, end, draw(st.sampled_from(LABELS)), text[start:end], 0.5))
        at = end + 1
    return out


@settings(max_examples=300, deadline=None)
@given(TEXTS, TERMS, st.data())
def test_dictionary_properties(text: str, terms: list[tuple[str, str]], data: st.DataObject) -> None:
    model = data.draw(model_entities(text))
    lex = _lex(*(Term(t, label) for t, label in terms))
    got = apply(text, text, model, lex)
    forced = [e for e in got if e.source != SOURCE_MODEL]
    # Every row's offsets reproduce its text, and no two rows overlap (forced ones never do).
    assert all(text[e.start:e.end] == e.text for e in got)
    assert all(a.end <= b.start for a, b in zip(forced, forced[1:]))
    # A model entity survives unchanged exactly when it does not overlap a forced one.
    for m in model:
        overlaps = any(f.start < m.end and m.start < f.end for f in forced)
        assert (m in got) == (not overlaps)
    # Forced rows are occurrences of an entry, of its type, and cover every occurrence not beaten
    # by a longer (or as long and earlier) overlapping one.
    entries = dict(terms)
    for f in forced:
        assert entries.get(f.text) == f.label
    occ = lex.occurrences(text)
    assert [(f.start, f.end, f.label) for f in forced] == choose(occ)
    for s, e, _ in occ:
        assert any(f.start < e and s < f.end and (f.end - f.start, -f.start) >= (e - s, -s) for f in forced)
    # Without the dictionary nothing changes.
    assert apply(text, text, model, _lex(Term("不会出现的词语", "LOC"))) == sorted(model, key=lambda e: (e.start, e.end))


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.text(CHARS, min_size=1, max_size=4).filter(str.strip), st.data())
def test_blocked_texts_never_come_out(text: str, blocked: str, data: st.DataObject) -> None:
    model = data.draw(model_entities(text))
    got = apply(text, text, model, _lex(Term(blocked, "*", "block")))
    assert all(e.text != blocked for e in got)
    assert [e for e in model if e.text != blocked] == got
