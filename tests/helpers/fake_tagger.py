"""A fast, deterministic stand-in for the model, with markers that misbehave on purpose.

Dictionary match (leftmost-longest, non-overlapping) of a fixed name list. Markers in a text:
``[[RAISE]]`` raises, ``[[SLEEP]]`` sleeps an hour but honours the caller's ``deadline`` and
``stop`` (raises ``DeadlineExceeded`` / ``Stopped``, like ``Tagger.annotate``), ``[[HANG]]`` sleeps an hour
ignoring the deadline (only the soft time limit ends it), ``[[STUCK]]`` also blocks the soft
limit's signal like a stuck native op (only the hard limit ends it), ``[[KILL]]`` SIGKILLs its
own process, ``[[EXIT]]`` calls ``os._exit(1)``. Select it with
``SHITI_MODEL=py:tests.helpers.fake_tagger:make_tagger``.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from worker.tagger.errors import DeadlineExceeded, Stopped  # torch-free

NAMES = {
    "PER": ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴婷", "习近平", "李强"],
    "LOC": ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "中国", "浙江"],
    "ORG": ["新华社", "清华大学", "北京大学", "复旦大学", "中国银行", "国务院", "阿里巴巴", "华为公司",
            "中国科学院", "人民日报社"],
}
_LABEL = {name: label for label, names in NAMES.items() for name in names}
_PATTERN = re.compile("|".join(sorted(map(re.escape, _LABEL), key=len, reverse=True)))


@dataclass(frozen=True)
class FakeEntity:
    start: int
    end: int
    label: str
    text: str
    score: float


class FakeTagger:
    """Implements ``Tagger.annotate``; ``delay`` seconds per document simulate model time."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def annotate(self, texts: Sequence[str], *, deadline: float | None = None,
                 stop: Callable[[], bool] | None = None) -> list[list[FakeEntity]]:
        out = []
        for text in texts:
            if "[[KILL]]" in text:
                os.kill(os.getpid(), signal.SIGKILL)
            if "[[EXIT]]" in text:
                os._exit(1)
            if "[[STUCK]]" in text:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # billiard's soft limit
                time.sleep(3600)
            if "[[HANG]]" in text:
                time.sleep(3600)
            if "[[SLEEP]]" in text:
                _sleep_until(deadline, 3600, stop)
            if "[[RAISE]]" in text:
                raise RuntimeError("fake tagger asked to raise")
            if self.delay:
                time.sleep(self.delay)
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded("fake tagger passed its deadline")
            out.append([
                FakeEntity(m.start(), m.end(), _LABEL[m.group()], m.group(), round(0.5 + len(m.group()) / 20, 3))
                for m in _PATTERN.finditer(text)
            ])
        return out


def _sleep_until(deadline: float | None, longest: float, stop: Callable[[], bool] | None = None) -> None:
    # In 50 ms steps, like windows of a long document: the deadline and ``stop`` are asked at each.
    end = time.monotonic() + longest
    while time.monotonic() < end:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded("fake tagger passed its deadline")
        if stop is not None and stop():
            raise Stopped("fake tagger asked to stop")
        time.sleep(0.05)


def make_tagger() -> FakeTagger:
    return FakeTagger()


def make_slow_tagger() -> FakeTagger:
    """About 50 ms per document (chaos tests)."""
    return FakeTagger(delay=0.05)


def make_chaos_tagger() -> FakeTagger:
    """About 10 ms per document: batches are in flight long enough for kills to hit them."""
    return FakeTagger(delay=0.01)


def make_redelivery_tagger() -> FakeTagger:
    """About 300 ms per document: a batch stays in flight for seconds (redelivery tests)."""
    return FakeTagger(delay=0.3)
