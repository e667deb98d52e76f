"""Windows: coverage, size limits and exact offsets for any text."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.tagger.windows import Window, make_windows, word_cost

TEXTS = st.text(
    alphabet=st.sampled_from(list("北京大学 \r\n\tabcXYZ019😀𠀀ＡＢ１。，") + ["\u3000"]), max_size=400
)


def _check_cover(text: str, windows: list[Window], overlap: int) -> None:
    covered = set()
    for w in windows:
        assert 0 <= w.start < w.end <= len(text)
        covered.update(range(w.start, w.end))
    assert covered == set(range(len(text)))
    assert [w.start for w in windows] == sorted({w.start for w in windows})


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(1, 40), overlap=st.integers(0, 30))
def test_char_mode_windows_cover_every_char_within_limit(text: str, max_tokens: int, overlap: int) -> None:
    windows = make_windows(text, max_tokens=max_tokens, overlap=overlap)
    _check_cover(text, windows, overlap)
    assert all(w.end - w.start <= max_tokens for w in windows)


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(2, 40), overlap=st.integers(0, 30))
def test_costly_chars_and_exact_counter_never_exceed_limit(text: str, max_tokens: int, overlap: int) -> None:
    # Given a tokenizer stand-in where astral chars cost 2 tokens and ASCII runs split in pairs
    def count(piece: str) -> int:
        tokens = 0
        for word in piece.split():
            for ch in word:
                tokens += 2 if ord(ch) > 0xFFFF else 1
        return tokens

    windows = make_windows(text, max_tokens=max_tokens, overlap=overlap, cost=word_cost, count_tokens=count)
    if not text:
        assert windows == []
        return
    _check_cover(text, windows, overlap)
    assert all(count(text[w.start : w.end]) <= max_tokens for w in windows)


def test_consecutive_windows_overlap_by_requested_chars() -> None:
    windows = make_windows("北" * 1000, max_tokens=100, overlap=20)
    assert windows[0] == Window(0, 100)
    assert all(b.start == a.end - 20 for a, b in zip(windows, windows[1:]))
    assert windows[-1].end == 1000


def test_offsets_exact_with_crlf_emoji_and_fullwidth() -> None:
    text = "张三😀\r\n在ＡＢＣ１２\u3000北京" * 50
    windows = make_windows(text, max_tokens=17, overlap=5)
    pieces = [text[w.start : w.end] for w in windows]
    assert "".join(p[: windows[i + 1].start - windows[i].start] for i, p in enumerate(pieces[:-1])) + pieces[
        -1
    ] == text


def test_prefers_not_to_cut_inside_ascii_word() -> None:
    text = "中" * 8 + "hello" + "中" * 20
    windows = make_windows(text, max_tokens=10, overlap=0)
    assert windows[0] == Window(0, 8)  # the cut moved before "hello"


def test_empty_text_has_no_windows_and_bad_sizes_raise() -> None:
    assert make_windows("", max_tokens=10, overlap=2) == []
    with pytest.raises(ValueError):
        make_windows("abc", max_tokens=0, overlap=0)
    with pytest.raises(ValueError):
        make_windows("😀", max_tokens=1, overlap=0, cost=lambda ch: 3)


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(1, 40), overlap=st.integers(0, 30))
@example(text=" 0000", max_tokens=4, overlap=0)  # word-start cut under the lowered budget: 3 windows, greedy 2
def test_balanced_windows_cover_within_limit_and_no_more_than_greedy(text: str, max_tokens: int, overlap: int) -> None:
    greedy = make_windows(text, max_tokens=max_tokens, overlap=overlap)
    balanced = make_windows(text, max_tokens=max_tokens, overlap=overlap, balanced=True)
    _check_cover(text, balanced, overlap)
    assert all(w.end - w.start <= max_tokens for w in balanced)
    assert len(balanced) <= len(greedy)


def test_balanced_windows_are_equal_sized() -> None:
    # Given a 1,024-char document and 510-token windows with 64 chars of overlap
    windows = make_windows("北" * 1024, max_tokens=510, overlap=64, balanced=True)
    # Then it becomes 3 windows of (nearly) equal size, not 510 + 510 + 132
    sizes = [w.end - w.start for w in windows]
    assert len(sizes) == 3 and max(sizes) - min(sizes) <= 1, sizes
    assert all(b.start == a.end - 64 for a, b in zip(windows, windows[1:]))
