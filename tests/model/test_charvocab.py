"""Char ids from vocab.txt equal the transformers-based CharEncoder, char by char and per text."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.model.bio import read_bio
from worker.tagger.charvocab import CharVocab
from worker.model.checkpoint import read_tokenizer
from worker.tagger.encoding import CharEncoder

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VOCAB = DATA / "vocab" / "bert-base-chinese-vocab.txt"
MSRA = DATA / "msra" / "test.txt"

# Latin-1, Latin Extended, combining marks, Greek, Cyrillic, general punctuation and spaces,
# CJK symbols, kana, fullwidth forms, a CJK slice, compatibility ideographs, emoji, ext. B.
RANGES = [(0, 0x600), (0x1E00, 0x2100), (0x2E80, 0x3100), (0x4E00, 0x5200), (0xF900, 0xFB00),
          (0xFE30, 0x10000), (0x1F300, 0x1F700), (0x20000, 0x20080), (0x2B800, 0x2B940)]


def _chars() -> list[str]:
    chars = {chr(c) for lo, hi in RANGES for c in range(lo, hi)}
    if MSRA.exists():
        chars |= {ch for s in read_bio(MSRA) for ch in s.text}
    return sorted(chars)


@pytest.mark.parametrize("lower", [True, False])
def test_every_char_encodes_like_char_encoder(tmp_path, lower: bool) -> None:
    # Given the bert-base-chinese vocab read both ways
    if not VOCAB.exists():
        pytest.skip("shared vocab missing")
    (tmp_path / "vocab.txt").write_bytes(VOCAB.read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(f'{{"do_lower_case": {str(lower).lower()}}}')
    ref = CharEncoder(read_tokenizer(tmp_path)[0])
    ours = CharVocab.from_file(VOCAB, lower=lower)
    # Then every character of MSRA test and of a wide unicode sample maps to the same ids
    chars = _chars()
    assert len(chars) > 9_000
    bad = [(hex(ord(ch)), ref._char_ids(ch), ours.ids_of(ch)) for ch in chars if ref._char_ids(ch) != ours.ids_of(ch)]
    assert bad == []
    # and whole texts (multi-piece chars, spaces, astral chars) encode identically
    text = "".join(chars[::37]) + "Ｈｅｌｌｏ　ＷＯＲＬＤ ﬁ ½ ⅷ Å 😀𠀀\r\n北京"
    assert ours.encode(text) == ref.encode(text)


def test_tiny_vocab_word_pieces_and_unknowns(tmp_path) -> None:
    from conftest import vocab

    (tmp_path / "vocab.txt").write_text("\n".join(vocab()) + "\n", encoding="utf-8")
    ref = CharEncoder(read_tokenizer(tmp_path)[0])
    ours = CharVocab.from_file(tmp_path / "vocab.txt")
    text = "北京 abc ÀÉ 2023 😀 ？！x\t" + "".join(chr(c) for c in range(0x2000, 0x2070))
    assert ours.encode(text) == ref.encode(text)
    got = ours.text_ids(text)
    assert got.counts is None and len(got.ids) == len(text)
    assert ours.count_tokens(text) == ref.count_tokens(text)
