"""Dispatcher logic against fakeredis (queue depth) and a recording publisher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.service import submit_corpus
from storage.broker import dispatch as dispatch_mod
from storage.sql import queries
from storage.sql.db import dispose_all, get_database
from storage.broker.dispatch import dispatch, plan_batches, queue_depth
from storage.catalog import resolve
from storage.broker.presence import announce
from storage.core.views import Presence
from storage.broker.queue import PRIORITY_NORMAL, queue_for, queue_keys
from storage.core.settings import Settings


@given(st.lists(st.integers(0, 500), max_size=60), st.integers(1, 1000), st.integers(1, 10))
def test_plan_batches_bounds_and_order(sizes: list[int], max_chars: int, max_docs: int) -> None:
    docs = list(enumerate(sizes))
    batches = plan_batches(docs, max_chars=max_chars, max_docs=max_docs)
    assert [i for b in batches for i in b] == [i for i, _ in docs]
    for b in batches:
        assert 1 <= len(b) <= max_docs
        assert len(b) == 1 or sum(sizes[i] for i in b) <= max_chars


class Recorder:
    def __init__(self, r: fakeredis.FakeRedis, queue: str, fail: bool = False) -> None:
        self.r, self.queue, self.fail, self.sent = r, queue, fail, []

    def send_task(self, name: str, kwargs: dict[str, Any], queue: str, priority: int) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(kwargs)
        self.r.rpush(queue_keys(queue)[priority == PRIORITY_NORMAL], "msg")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = Settings(data_dir=tmp_path, redis_url="redis://fake", batch_docs=5, high_water=3)
    r = fakeredis.FakeRedis()
    served = resolve(settings)
    for n in range(5):  # five live workers of the model: the high-water mark is what limits the queue
        announce(r, settings, Presence(node=f"w{n}", model=served.name, content_hash=served.content_hash, labels=[]))
    app = Recorder(r, settings.queue)
    monkeypatch.setattr(dispatch_mod, "broker", lambda s: (app, r))
    yield settings, app, r
    dispose_all()


def test_dispatch_fills_only_up_to_the_high_water_mark(setup) -> None:
    settings, app, r = setup
    result = submit_corpus(settings, [{"id": str(i), "text": "北京"} for i in range(40)])
    assert len(app.sent) == 3 and queue_depth(settings) == 3  # 3 batches of 5, not 8
    counts = queries.count_by_status(get_database(settings), result.job_id)
    assert (counts["queued"], counts["pending"]) == (15, 25)
    assert dispatch(settings) == 0  # still full
    r.lpop(queue_keys(queue_for(settings, settings.model_name))[1])
    assert dispatch(settings) == 1
    sent_ids = [i for m in app.sent for i in m["doc_ids"]]
    assert len(sent_ids) == len(set(sent_ids)) == 20


def test_failed_publish_loses_nothing(setup) -> None:
    settings, app, _ = setup
    app.fail = True
    result = submit_corpus(settings, [{"id": str(i), "text": "北京"} for i in range(7)])
    assert not result.dispatched
    counts = queries.count_by_status(get_database(settings), result.job_id)
    assert (counts["pending"], counts["queued"]) == (7, 0)  # put back, ready for the reconciler
    app.fail = False
    assert dispatch(settings) == 2
