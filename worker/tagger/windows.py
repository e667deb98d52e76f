"""Fixed-size overlapping windows over a document, kept as character offsets. Pure code.

A window's size is measured in model tokens (``max_length - 2``: room for
[CLS]/[SEP]). Each character has a token cost: in char mode the exact number of
ids it encodes to (usually 1); in word mode an upper bound (1 for any
non-whitespace character, 0 for whitespace, which BERT drops), checked against
the real tokenizer through ``count_tokens`` when given — a window that still
tokenizes past the limit is shrunk and re-checked, never truncated.

With ``balanced=True`` the budget is spread evenly: a text that needs ``k`` windows
gets ``k`` windows of about equal size (1,024 chars at 510 tokens: 3 x ~363, not
510 + 510 + 132), so a batch of windows pads less and no window is a near-empty
straggler.

Offsets are Python string indices (code points), end-exclusive, into the text
given, so astral characters, ``\\r\\n`` and full-width characters need no care.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Cost = Callable[[str], int]
Counter = Callable[[str], int]


@dataclass(frozen=True, order=True)
class Window:
    """Characters ``text[start:end]`` of a document."""

    start: int
    end: int


def word_cost(ch: str) -> int:
    """Upper bound of the tokens one character adds in word mode (whitespace adds none)."""
    return 0 if ch.isspace() else 1


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _greedy_end(text: str, start: int, limit: int, cost: Cost | None) -> int:
    """Largest end such that the cost of ``text[start:end]`` is at most ``limit`` (at least start+1)."""
    if cost is None:  # every character costs one token
        return min(len(text), start + max(limit, 1))
    used = 0
    end = start
    n = len(text)
    while end < n:
        c = cost(text[end])
        if used + c > limit and end > start:
            break
        used += c
        end += 1
    return end


def _avoid_word_cut(text: str, start: int, end: int) -> int:
    """Move ``end`` back to the start of an ASCII word it would cut, if that keeps half the window."""
    if end >= len(text) or not (_is_word_char(text[end - 1]) and _is_word_char(text[end])):
        return end
    cut = end - 1
    while cut > start and _is_word_char(text[cut - 1]):
        cut -= 1
    return cut if cut - start >= (end - start) // 2 and cut > start else end


def make_windows(
    text: str,
    *,
    max_tokens: int,
    overlap: int,
    cost: Cost | None = None,
    count_tokens: Counter | None = None,
    balanced: bool = False,
) -> list[Window]:
    """Cut ``text`` into windows of at most ``max_tokens`` tokens that overlap by ``overlap`` chars.

    Args:
        text: the document.
        max_tokens: token budget of one window (model max length minus 2).
        overlap: characters shared by consecutive windows (capped at half a window,
            so windows always advance).
        cost: tokens per character; defaults to 1 for every character (char mode).
        count_tokens: exact token count of a piece of text; when given, a window over
            the budget is shrunk until it fits.
        balanced: size windows evenly (fewest windows at ``max_tokens``, then the budget
            lowered to share the text equally among them) instead of filling each to
            ``max_tokens`` and leaving the rest to the last.

    Returns:
        Windows covering every character, in order; ``[]`` for an empty text.

    Raises:
        ValueError: ``max_tokens`` < 1, ``overlap`` < 0, or a single character needs
            more than ``max_tokens`` tokens.
    """
    if max_tokens < 1 or overlap < 0:
        raise ValueError(f"bad window sizes: max_tokens={max_tokens}, overlap={overlap}")
    if not balanced:
        return _cut(text, max_tokens, max_tokens, overlap, cost, count_tokens)
    limit, fewest = _balanced_limit(text, max_tokens, overlap, cost)
    windows = _cut(text, limit, max_tokens, overlap, cost, count_tokens)
    if len(windows) > fewest:
        # Cuts moved back to word starts (or shrunk to fit the tokenizer) can leave the lowered
        # budget one window short at the end; full-size windows may then need fewer.
        greedy = _cut(text, max_tokens, max_tokens, overlap, cost, count_tokens)
        if len(greedy) < len(windows):
            return greedy
    return windows


def _cut(
    text: str, limit: int, max_tokens: int, overlap: int, cost: Cost | None, count_tokens: Counter | None
) -> list[Window]:
    """Windows filled up to ``limit`` tokens each (``max_tokens`` is the hard cap)."""
    n = len(text)
    windows: list[Window] = []
    start = 0
    while start < n:
        end = _greedy_end(text, start, limit, cost)
        end = _avoid_word_cut(text, start, end)
        if count_tokens is not None:
            end = _fit(text, start, end, max_tokens, count_tokens)
        elif end - start == 1 and cost is not None and cost(text[start]) > max_tokens:
            raise ValueError(f"character {text[start]!r} at {start} needs more than {max_tokens} tokens")
        windows.append(Window(start, end))
        if end >= n:
            break
        start = max(start + 1, end - min(overlap, (end - start) // 2))
    return windows


def _balanced_limit(text: str, max_tokens: int, overlap: int, cost: Cost | None) -> tuple[int, int]:
    """The per-window budget that splits ``text`` into the fewest, equally sized windows, and
    that fewest number (reached when no cut has to move back to a word start)."""
    total = len(text) if cost is None else sum(map(cost, text))
    if total <= max_tokens:
        return max_tokens, 1
    shared = min(overlap, max_tokens // 2)  # the overlap make_windows really keeps
    k = -(-(total - shared) // (max_tokens - shared))  # windows needed at full size
    return max(1, min(max_tokens, -(-(total + (k - 1) * shared) // k))), k


def _fit(text: str, start: int, end: int, limit: int, count: Counter) -> int:
    """Shrink ``end`` until ``text[start:end]`` tokenizes to at most ``limit`` tokens."""
    while True:
        used = count(text[start:end])
        if used <= limit:
            return end
        if end - start == 1:
            raise ValueError(f"character {text[start]!r} at {start} needs more than {limit} tokens")
        # Shrink in proportion to the excess (at least one char), then re-check.
        end = start + max(1, min(end - start - 1, (end - start) * limit // used))
