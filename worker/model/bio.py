"""Reading BIO files in the ../shared/data format (``CHAR<TAB>TAG`` lines, blank line per sentence)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence: a text and one tag per character."""

    text: str
    tags: tuple[str, ...]


def read_bio(path: str | Path) -> Iterator[Sentence]:
    """Yield sentences from a BIO/BIOES file.

    Raises:
        ValueError: a line has no TAB, or a character field is not one code point.
    """
    chars: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line:
                if chars:
                    yield Sentence("".join(chars), tuple(tags))
                    chars, tags = [], []
                continue
            ch, sep, tag = line.partition("\t")
            if not sep or len(ch) != 1:
                raise ValueError(f"{path}:{lineno}: expected 'CHAR<TAB>TAG', got {line!r}")
            chars.append(ch)
            tags.append(tag.strip() or "O")
    if chars:
        yield Sentence("".join(chars), tuple(tags))
