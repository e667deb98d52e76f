"""Character offsets in each tool's convention.

shiti's offsets are code points (Python ``str`` indices). Label Studio counts code points too (its
text regions are indices into ``[...text]``); doccano counts UTF-16 code units (JavaScript string
indices), so a character outside the Basic Multilingual Plane (most emoji) counts twice there.
"""

from __future__ import annotations

import bisect
from typing import Literal

Convention = Literal["codepoint", "utf16"]
CONVENTIONS: tuple[Convention, ...] = ("codepoint", "utf16")


class OffsetError(ValueError):
    """An offset that does not fall on a character boundary of the text."""


def _astral(text: str) -> list[int]:
    """Code-point positions of the characters that take two UTF-16 units."""
    return [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]


def to_tool(text: str, offset: int, convention: Convention) -> int:
    """``offset`` (a code-point index into ``text``) in ``convention``."""
    if convention == "codepoint":
        return offset
    return offset + bisect.bisect_left(_astral(text), offset)


def from_tool(text: str, offset: int, convention: Convention) -> int:
    """A tool's ``offset`` into ``text`` as a code-point index.

    Raises:
        OffsetError: it is negative, past the end, or (UTF-16) between the two halves of a character.
    """
    if convention == "utf16":
        astral = _astral(text)
        limit = len(text) + len(astral)
        if not 0 <= offset <= limit:
            raise OffsetError(f"offset {offset} is outside the text (0..{limit} UTF-16 units)")
        # The code-point index i has UTF-16 index i + (astral characters before i).
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi) // 2
            if mid + bisect.bisect_left(astral, mid) < offset:
                lo = mid + 1
            else:
                hi = mid
        if lo + bisect.bisect_left(astral, lo) != offset:
            raise OffsetError(f"offset {offset} falls inside the two UTF-16 units of {text[lo - 1]!r}")
        return lo
    if not 0 <= offset <= len(text):
        raise OffsetError(f"offset {offset} is outside the text (0..{len(text)} characters)")
    return offset
