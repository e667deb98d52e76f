"""Text -> model input for one window, in RaNER's two tokenization modes.

Word mode (docs/raner_format.md §4.2): the fast BERT tokenizer with offsets; one label
per word, on its first sub-token; word offsets span all its sub-tokens.
Char mode (§4.1 B): every character is one word, encoded on its own; a character
that yields no token (a space) becomes ``[UNK]``.

Offsets are code-point offsets into the text given, end-exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the tokenizer is passed in; importing transformers here would load it in workers
    from transformers import BertTokenizerFast


def read_vocab(path: str | Path) -> dict[str, int]:
    """``vocab.txt`` as token -> id, with BERT's ``load_vocab`` rule (one token a line, ``\n`` stripped)."""
    with open(path, encoding="utf-8") as fh:
        return {line.rstrip("\n"): i for i, line in enumerate(fh)}


def read_tokenizer_config(path: Path) -> tuple[bool, bool]:
    """``(do_lower_case, char_mode)`` from ``path/tokenizer_config.json`` (defaults: lower, word mode).

    Raises:
        ModelLoadError: the file exists but is not a JSON object.
    """
    from worker.tagger.jsonfile import read_json

    file = path / "tokenizer_config.json"
    if not file.exists():
        return True, False
    cfg = read_json(file)
    return bool(cfg.get("do_lower_case", True)), bool(cfg.get("is_split_into_words", False))


@dataclass(frozen=True)
class Encoded:
    """One window ready for the encoder (special tokens included)."""

    input_ids: list[int]
    word_index: list[int]  # position of each word's first sub-token in input_ids
    word_spans: list[tuple[int, int]]  # char offsets of each word in the window text


class Encoder(Protocol):
    """Turns a window of text into token ids and word offsets."""

    def encode(self, text: str) -> Encoded: ...

    def count_tokens(self, text: str) -> int: ...


class CharEncoder:
    """Char mode: one word per code point, matching modelscope's ``is_split_into_words``."""

    def __init__(self, tokenizer: BertTokenizerFast) -> None:
        self._tok = tokenizer
        self._cls = tokenizer.cls_token_id
        self._sep = tokenizer.sep_token_id
        self._unk = tokenizer.unk_token_id
        self._ids = lru_cache(maxsize=65536)(self._char_ids)

    def _char_ids(self, ch: str) -> tuple[int, ...]:
        ids = self._tok.encode(ch, add_special_tokens=False)
        return tuple(ids) if ids else (self._unk,)

    def encode(self, text: str) -> Encoded:
        input_ids = [self._cls]
        word_index: list[int] = []
        for ch in text:
            word_index.append(len(input_ids))
            input_ids.extend(self._ids(ch))
        input_ids.append(self._sep)
        return Encoded(input_ids, word_index, [(i, i + 1) for i in range(len(text))])

    def count_tokens(self, text: str) -> int:
        return sum(len(self._ids(ch)) for ch in text)


class WordEncoder:
    """Word mode: BERT basic + WordPiece tokenization with offsets, on the ``tokenizers`` library.

    Takes a ``tokenizers.Tokenizer`` (see :func:`bert_wordpiece`) or a transformers fast
    tokenizer (its backend is the same object), so serving needs neither transformers nor torch.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = getattr(tokenizer, "backend_tokenizer", tokenizer)

    def encode(self, text: str) -> Encoded:
        enc = self._tok.encode(text)
        word_index: list[int] = []
        spans: list[tuple[int, int]] = []
        prev = None
        for pos, (wid, (start, end)) in enumerate(zip(enc.word_ids, enc.offsets)):
            if wid is None:
                continue
            if wid != prev:
                word_index.append(pos)
                spans.append((start, end))
            else:  # continuation sub-token extends the word
                spans[-1] = (spans[-1][0], end)
            prev = wid
        return Encoded(list(enc.ids), word_index, spans)

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)


def bert_wordpiece(vocab: dict[str, int], *, lower: bool) -> Any:
    """The ``tokenizers.Tokenizer`` transformers' ``BertTokenizerFast`` builds for this vocab
    (BertNormalizer, BertPreTokenizer, WordPiece, ``[CLS] ... [SEP]``)."""
    from tokenizers.implementations import BertWordPieceTokenizer

    return BertWordPieceTokenizer(vocab, lowercase=lower, strip_accents=None, clean_text=True,
                                  handle_chinese_chars=True)
