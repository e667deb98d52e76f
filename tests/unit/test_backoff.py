"""The one backoff rule, as the batch retry and the webhook delivery use it."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from storage.core.backoff import backoff
from storage.webhook.deliver import retry_after
from worker.tasks import RETRY_JITTER


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.5, max_value=60), st.integers())
def test_batch_retry_is_jittered_below_the_cap(retries: int, cap: float, seed: int) -> None:
    delay = backoff(retries, first=0.5, cap=cap, jitter=RETRY_JITTER, rng=random.Random(seed))
    ceiling = min(cap, 0.5 * 2.0 ** min(retries, 30))
    assert ceiling / 2 <= delay <= ceiling


def test_delay_grows_until_the_cap_then_stays() -> None:
    top = [backoff(n, first=0.5, cap=5.0, jitter=RETRY_JITTER, rng=random.Random(0))
           / random.Random(0).uniform(*RETRY_JITTER) for n in range(8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]


@given(st.integers(min_value=-3, max_value=10**6), st.floats(min_value=1, max_value=3600), st.integers())
def test_jitter_above_one_never_passes_the_cap(n: int, cap: float, seed: int) -> None:
    delay = backoff(n, first=5.0, cap=cap, jitter=(0.8, 1.2), rng=random.Random(seed))
    step = min(cap, 5.0 * 2.0 ** min(max(n, 0), 30))
    assert 0.8 * step <= delay <= min(cap, 1.2 * step)


def test_webhook_retries_stay_spread_at_the_cap() -> None:
    # At the cap the draws still differ: receivers back from an outage are not hit all at once.
    at_cap = {round(retry_after(50, cap=600), 6) for _ in range(20)}
    assert len(at_cap) > 1 and all(480 <= d <= 600 for d in at_cap)
