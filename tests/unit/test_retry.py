"""The retry backoff of a batch after a transient database error."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from worker.retry import retry_delay


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.5, max_value=60), st.integers())
def test_delay_is_jittered_below_the_cap(retries: int, cap: float, seed: int) -> None:
    delay = retry_delay(retries, cap=cap, rng=random.Random(seed))
    ceiling = min(cap, 0.5 * 2.0 ** min(retries, 30))
    assert ceiling / 2 <= delay <= ceiling


def test_delay_grows_until_the_cap_then_stays() -> None:
    top = [retry_delay(n, cap=5.0, rng=random.Random(0)) / random.Random(0).uniform(0.5, 1.0) for n in range(8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
