"""Input rules applied at ingest (docs/reliability.md §5), so bad data never reaches a worker.

Offsets are code points into the stored text, so every rewrite here keeps the length:
control characters become one space each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storage.core.domain import DocumentStatus, Reason

# C0 and C1 controls except \t \n \r (PostgreSQL rejects NUL; the others confuse tokenizers).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Checked:
    """The stored form of one document: the text the model will see and its initial state."""

    text: str
    status: DocumentStatus
    reason: str | None = None
    error: str | None = None


def rejected(reason: str, error: str) -> Checked:
    """A document refused at ingest: stored with empty text, ``failed``."""
    return Checked("", DocumentStatus.FAILED, reason, error)


def decode_utf8(raw: bytes) -> str | Checked:
    """Strict UTF-8 decoding; a ``decode_error`` rejection (with the byte offset) on failure."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return rejected(Reason.DECODE_ERROR, f"invalid UTF-8 at byte {exc.start}: {exc.reason}")


def check_text(text: str, *, max_chars: int) -> Checked:
    """Apply the input rules to a decoded text.

    Returns:
        ``failed`` with ``too_large`` / ``surrogate`` / ``decode_error``; ``done`` with reason
        ``empty`` for empty or whitespace-only text; otherwise ``pending`` with controls replaced.
    """
    if len(text) > max_chars:
        return rejected(Reason.TOO_LARGE, f"{len(text)} characters > limit {max_chars}")
    bad = _SURROGATE.search(text)
    if bad is not None:
        # surrogateescape'd bytes (U+DC80..U+DCFF) come from undecodable input; others are lone
        # surrogates from JSON escapes. Neither can be encoded as UTF-8 or stored.
        code = ord(bad.group())
        if 0xDC80 <= code <= 0xDCFF:
            return rejected(Reason.DECODE_ERROR, f"invalid UTF-8 byte 0x{code - 0xDC00:02x}")
        return rejected(Reason.SURROGATE, f"lone surrogate U+{code:04X} at character {bad.start()}")
    text = _CONTROLS.sub(" ", text)
    if not text.strip():
        return Checked(text, DocumentStatus.DONE, Reason.EMPTY, None)
    return Checked(text, DocumentStatus.PENDING)
