"""Char-mode token ids straight from ``vocab.txt``, without the transformers tokenizer.

In char mode every character is encoded on its own (docs/raner_format.md §4.1 B), so the
whole tokenizer reduces to a table char -> ids. :func:`char_ids` rebuilds that table
entry with the rules of the fast BERT tokenizer (``BertNormalizer`` +
``BertPreTokenizer`` + WordPiece, which is what :class:`~worker.tagger.encoding.CharEncoder`
calls): control characters and U+0000/U+FFFD are dropped and whitespace becomes a
space; accents are stripped (NFD, then Mn removed) and the text lower-cased when
``do_lower_case``; whitespace splits and punctuation is a token of its own; each word
is WordPiece'd greedily (longest match, ``##`` continuations, ``[UNK]`` for the whole
word when a piece is missing or it is over 100 chars). A character that yields no
token becomes ``[UNK]``, as in ``CharEncoder``. Tests check equality with
``CharEncoder`` on every MSRA test character and a wide range of code points.

:meth:`CharVocab.text_ids` turns a whole text into ids with one ``str.translate``
(each code point maps to the code points of its ids), so a worker does no
per-character Python for characters it has seen before.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.tagger.encoding import Encoded, read_vocab

_MAX_WORD_CHARS = 100
# Code points of ids are written into a str: skip the surrogate block, which a str can
# hold but UTF-32 cannot encode.
_SURROGATES = 0xD800
_SHIFT = 0x800


def _is_other(ch: str) -> bool:
    return unicodedata.category(ch).startswith("C")


def _is_whitespace(ch: str) -> bool:
    return ch in "\t\n\r " or ch.isspace()


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    ascii_punct = 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
    return ascii_punct or unicodedata.category(ch).startswith("P")


def _normalize(ch: str, *, lower: bool) -> str:
    """BertNormalizer on one character (its order: clean, strip accents, lower-case)."""
    if ch in "\x00\ufffd" or (ch not in "\t\n\r" and _is_other(ch)):
        return ""
    if _is_whitespace(ch):
        return " "
    if lower:  # strip_accents follows lowercase when not set, as in BertTokenizerFast
        ch = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
        ch = ch.lower()
    return ch


def _words(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace, isolate each punctuation character."""
    words: list[str] = []
    cur = ""
    for ch in text:
        if _is_whitespace(ch):
            if cur:
                words.append(cur)
            cur = ""
        elif _is_punctuation(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def _wordpiece(word: str, vocab: dict[str, int], unk: int) -> list[int]:
    if len(word) > _MAX_WORD_CHARS:
        return [unk]
    out: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [unk]
        out.append(found)
        start = end
    return out


def char_ids(ch: str, vocab: dict[str, int], *, lower: bool, unk: int) -> tuple[int, ...]:
    """Token ids of one character encoded on its own (``[UNK]`` when it yields none)."""
    ids = [i for word in _words(_normalize(ch, lower=lower)) for i in _wordpiece(word, vocab, unk)]
    return tuple(ids) if ids else (unk,)


class _Table(dict):
    """ord(char) -> str whose code points encode the char's ids; filled on first use."""

    def __init__(self, vocab: CharVocab) -> None:
        super().__init__()
        self._vocab = vocab

    def __missing__(self, cp: int) -> str:
        ids = self._vocab.ids_of(chr(cp))
        value = "".join(chr(i + _SHIFT if i >= _SURROGATES else i) for i in ids)
        self[cp] = value
        return value


@dataclass
class TextIds:
    """Ids of a whole text (no special tokens) and, when some char has several, per-char counts."""

    ids: np.ndarray  # int64, concatenated ids of every char
    counts: np.ndarray | None  # int64 pieces per char; None when every char is one id


class CharVocab:
    """Char-mode encoder built from ``vocab.txt`` (same results as ``CharEncoder``)."""

    def __init__(self, vocab: dict[str, int], *, lower: bool = True) -> None:
        self.vocab = vocab
        self.lower = lower
        try:
            self.cls, self.sep, self.unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
        except KeyError as exc:
            raise ValueError(f"vocab has no {exc.args[0]} token") from exc
        self.pad = vocab.get("[PAD]", 0)
        if max(vocab.values(), default=0) + _SHIFT > 0x10FFFF:
            raise ValueError("vocab too large for the code-point table")
        self._table = _Table(self)

    @classmethod
    def from_file(cls, path: str | Path, *, lower: bool = True) -> CharVocab:
        """Read ``vocab.txt`` with BERT's ``load_vocab`` rule (one token a line, ``\\n`` stripped)."""
        return cls(read_vocab(path), lower=lower)

    def ids_of(self, ch: str) -> tuple[int, ...]:
        """Ids of one character."""
        return char_ids(ch, self.vocab, lower=self.lower, unk=self.unk)

    def text_ids(self, text: str) -> TextIds:
        """Ids of every character of ``text`` in order, via one ``str.translate``."""
        coded = text.translate(self._table)
        ids = np.frombuffer(coded.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids[ids >= _SURROGATES + _SHIFT] -= _SHIFT
        if len(coded) == len(text):
            return TextIds(ids, None)
        counts = np.fromiter((len(self._table[ord(ch)]) for ch in text), dtype=np.int64, count=len(text))
        return TextIds(ids, counts)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (special tokens excluded)."""
        return len(text.translate(self._table))

    def encode(self, text: str) -> Encoded:
        """The same :class:`Encoded` as ``CharEncoder.encode``."""
        got = self.text_ids(text)
        counts = got.counts if got.counts is not None else np.ones(len(text), dtype=np.int64)
        starts = (np.cumsum(counts) - counts + 1).tolist()
        input_ids = [self.cls, *got.ids.tolist(), self.sep]
        return Encoded(input_ids, starts, [(i, i + 1) for i in range(len(text))])
