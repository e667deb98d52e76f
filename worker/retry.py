"""When to try a batch again after a transient infrastructure error (database restarting or locked)."""

from __future__ import annotations

import random


def retry_delay(retries: int, *, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before try ``retries + 1``: exponential from half a second, capped at ``cap``, with
    jitter in [50 %, 100 %] so that workers failing together do not come back together.

    The cap keeps the wait after the database returns short (at most ``cap``), and every
    countdown far below the visibility timeout (a longer ETA is redelivered again and again).
    """
    rng = rng or random
    return min(cap, 0.5 * 2.0 ** min(retries, 30)) * rng.uniform(0.5, 1.0)
