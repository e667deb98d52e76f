"""Fair share and routing in dispatch, against fakeredis and a recording publisher: a small job
behind a large one gets its batches at once, priorities weight the share, and every batch goes
to its own model's queue with the high-water mark counted per queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from producer.service import JobOptions, submit_corpus
from storage.broker import dispatch as dispatch_mod
from storage.sql.db import dispose_all
from storage.broker.dispatch import dispatch, queue_depth, queue_target
from storage.broker.presence import announce
from storage.core.views import Presence
from storage.broker.queue import PRIORITY_NORMAL, queue_for, queue_keys
from storage.core.settings import Settings


class Recorder:
    """Publishes into fakeredis lists like kombu does and remembers (queue, job) per batch."""

    def __init__(self, r: fakeredis.FakeRedis) -> None:
        self.r, self.sent = r, []

    def send_task(self, name: str, kwargs: dict[str, Any], queue: str, priority: int) -> None:
        self.sent.append((queue, kwargs["job_id"], len(kwargs["doc_ids"])))
        self.r.rpush(queue_keys(queue)[priority == PRIORITY_NORMAL], "msg")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Recorder, fakeredis.FakeRedis]]:
    settings = Settings(data_dir=tmp_path, redis_url="redis://fake", batch_docs=5, high_water=2, model="m1")
    r = fakeredis.FakeRedis()
    for model in ("m1", "m2"):  # one live worker each: a queue target of min(high_water, 1 + 1) = 2
        announce(r, settings, Presence(node=f"w@{model}", model=model, content_hash=f"h-{model}", labels=[]))
    app = Recorder(r)
    monkeypatch.setattr(dispatch_mod, "broker", lambda s: (app, r))
    yield settings, app, r
    dispose_all()


def _job(settings: Settings, n: int, *, model: str = "m1", priority: int = 1, prefix: str = "d") -> str:
    docs = [{"id": f"{prefix}{i}", "text": "北京" * 10} for i in range(n)]
    return submit_corpus(settings, docs, options=JobOptions(model, "h-" + model, priority)).job_id


def _worker_takes_one(settings: Settings, r: fakeredis.FakeRedis, model: str = "m1") -> None:
    for key in queue_keys(queue_for(settings, model)):
        if r.lpop(key) is not None:
            return
    raise AssertionError("queue empty")


def test_a_small_job_behind_a_large_one_gets_every_other_batch_at_once(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    big = _job(settings, 500, prefix="big")  # 100 batches
    for _ in range(5):  # the big job has been running a while
        _worker_takes_one(settings, r)
        dispatch(settings)
    small = _job(settings, 10, prefix="small")  # 2 batches
    mark = len(app.sent)
    for _ in range(4):
        _worker_takes_one(settings, r)
        dispatch(settings)
    after = [job for _, job, _ in app.sent[mark:]]
    # First-come-first-served would send 95 more big batches first; the fair share interleaves.
    assert after.count(small) == 2 and after.index(small) <= 1, after
    assert after.count(big) >= 2  # and the big job keeps going: it is not starved either


def test_priorities_weight_the_share(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    low = _job(settings, 400, priority=1, prefix="low")
    high = _job(settings, 400, priority=3, prefix="high")
    mark = len(app.sent)
    for _ in range(40):
        _worker_takes_one(settings, r)
        dispatch(settings)
    got = Counter(job for _, job, _ in app.sent[mark:])
    assert got[high] == 30 and got[low] == 10, got  # 3 : 1, exactly, at equal batch sizes


def test_each_model_has_its_own_queue_and_high_water_mark(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    a = _job(settings, 50, model="m1", prefix="a")
    b = _job(settings, 50, model="m2", prefix="b")
    assert queue_depth(settings, "m1") == queue_depth(settings, "m2") == settings.high_water
    by_queue = {(q, job) for q, job, _ in app.sent}
    assert by_queue == {(queue_for(settings, "m1"), a), (queue_for(settings, "m2"), b)}
    # No worker of m2: its queue stays full and m1's keeps flowing
    for _ in range(3):
        _worker_takes_one(settings, r, "m1")
        assert dispatch(settings) == 1
    assert queue_depth(settings, "m2") == settings.high_water and len(app.sent) == 7


def test_a_new_job_joins_at_the_running_jobs_virtual_time_not_at_zero(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    first = _job(settings, 300, prefix="first")
    for _ in range(20):
        _worker_takes_one(settings, r)
        dispatch(settings)
    second = _job(settings, 300, prefix="second")
    mark = len(app.sent)
    for _ in range(10):
        _worker_takes_one(settings, r)
        dispatch(settings)
    got = Counter(job for _, job, _ in app.sent[mark:])
    # Joining at zero it would take all 10 (it is 22 batches "behind"); at the floor they alternate.
    assert got[first] == got[second] == 5, got


def test_the_queue_holds_a_batch_per_live_worker_plus_one_up_to_the_high_water_mark() -> None:
    settings = Settings(high_water=8)
    assert [queue_target(settings, n) for n in (0, 1, 2, 7, 8, 50)] == [1, 2, 3, 8, 8, 8]


def test_with_no_live_worker_one_batch_waits(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    _job(settings, 50, model="m3", prefix="x")
    assert queue_depth(settings, "m3") == 1


def test_a_job_whose_files_no_live_worker_holds_waits_instead_of_bouncing(setup) -> None:  # type: ignore[no-untyped-def]
    settings, app, r = setup
    other = Presence(node="w2@m2", model="m2", content_hash="other-files", labels=[])
    r.delete(*r.keys("shiti:presence:*"))
    announce(r, settings, other)  # the only live worker of m2 holds other files than the job recorded
    job = _job(settings, 20, model="m2", prefix="y")
    assert queue_depth(settings, "m2") == 0 and not [s for s in app.sent if s[1] == job]
    # When a worker with the job's files comes up, dispatch sends it at once
    announce(r, settings, Presence(node="w3@m2", model="m2", content_hash="h-m2", labels=[]))
    assert dispatch(settings) == settings.high_water and {s[1] for s in app.sent} == {job}


def test_a_retried_job_rejoins_at_the_running_jobs_virtual_time(settings) -> None:  # type: ignore[no-untyped-def]
    from storage.sql import repo
    from storage.sql.db import get_database

    db = get_database(settings)
    old = _job(settings, 1, prefix="old")
    with db.write() as conn:  # it ran long ago, alone, to a high virtual time, then failed
        from sqlalchemy import update

        from storage.sql.schema import document, job
        conn.execute(update(job).where(job.c.id == old).values(vtime=1e9, status="failed", failed=1))
        conn.execute(update(document).where(document.c.job_id == old).values(status="failed", reason="error"))
    running = _job(settings, 10, prefix="new")
    assert repo.retry_failed(db, old) == 1
    vtimes = {e.job_id: e.vtime for e in repo.dispatchable_jobs(db)}
    assert vtimes[old] == vtimes[running] < 1e9
