"""Exponential backoff with jitter: the one rule for "when to try again" (batches after a database
error, webhook attempts after a failed POST)."""

from __future__ import annotations

import random


def backoff(n: int, *, first: float, cap: float, jitter: tuple[float, float],
            rng: random.Random | None = None) -> float:
    """Seconds to wait before try ``n + 1`` (``n`` >= 0 tries failed since the first wait):
    ``first × 2^n``, capped at ``cap``, then scaled by a uniform draw from ``jitter`` and capped
    again.

    The jitter spreads out clients that failed together, so they do not come back together; it
    applies below the cap too, so a fleet stuck at the cap stays spread out.

    Args:
        first: the wait after the first failure, before jitter.
        jitter: ``(low, high)`` factors, e.g. ``(0.5, 1.0)`` or ``(0.8, 1.2)``.
        rng: the random source (tests); the module's by default.
    """
    draw = (rng or random).uniform(*jitter)
    return min(cap, min(cap, first * 2.0 ** min(max(n, 0), 30)) * draw)  # 2^30: past any cap, no overflow
