"""Worker startup checks (refuse an evicting broker or VT <= lease, non-zero exit, clear
message) and ``shiti cancel`` / ``shiti retry`` end to end with real workers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from producer.service import submit_corpus
from storage.core.errors import PermanentError
from storage.processes.launch import worker_command
from storage.broker.queue import celery_config, startup_problems
from storage.broker.redis_server import RedisServer, start_redis, stop_redis
from tests.helpers.jobs import wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.helpers import FAKE_MODEL, doc_rows, job_row, make_texts, short_settings, wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _start_worker_expecting_refusal(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                          start_new_session=True)


def test_worker_refuses_an_evicting_broker(tmp_path: Path) -> None:
    # Given a broker whose maxmemory-policy would evict keys
    server = start_redis(tmp_path / "redis")
    try:
        redis.Redis.from_url(server.url).config_set("maxmemory-policy", "allkeys-lru")
        settings = short_settings(tmp_path, server, model=FAKE_MODEL)
        argv, env = worker_command(settings)
        # When a worker starts, Then it exits non-zero with a clear message, before consuming
        done = _start_worker_expecting_refusal(env, argv)
        assert done.returncode == 78
        assert "refusing to start: broker maxmemory-policy is 'allkeys-lru'" in done.stderr
    finally:
        stop_redis(server)


def test_worker_refuses_visibility_timeout_not_above_lease(tmp_path: Path, redis_server: RedisServer) -> None:
    # Given settings whose lease is longer than the visibility timeout
    settings = short_settings(tmp_path, redis_server, model=FAKE_MODEL)
    argv, env = worker_command(settings)
    env.update(SHITI_VISIBILITY_TIMEOUT="10", SHITI_LEASE_SECONDS="10", SHITI_TIME_LIMIT="6")
    # When a worker starts, Then it refuses with a clear message and a non-zero exit
    done = _start_worker_expecting_refusal(env, argv)
    assert done.returncode == 78
    assert "refusing to start: bad settings: lease_seconds must be below visibility_timeout" in done.stderr


def test_worker_refuses_a_model_that_is_not_an_onnx_artifact(tmp_path: Path, redis_server: RedisServer) -> None:
    # Given a RaNER directory (config.json and torch weights) as the model, not an ONNX artifact
    raner = tmp_path / "raner"
    raner.mkdir()
    (raner / "config.json").write_text('{"id2label": {"0": "O", "1": "B-PER", "2": "I-PER"}}')
    (raner / "pytorch_model.bin").write_bytes(b"weights")
    settings = short_settings(tmp_path, redis_server, model=str(raner))
    argv, env = worker_command(settings)
    # When a worker starts, Then it refuses before consuming, saying how to make it servable
    done = _start_worker_expecting_refusal(env, argv)
    assert done.returncode == 78
    assert "not servable (workers serve ONNX artifacts): quantize it first: shiti model quantize" in done.stderr


def test_startup_problems_lists_each_unsafe_setting(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = short_settings(tmp_path, redis_server)
    client = redis.Redis.from_url(redis_server.url)
    conf = celery_config(settings, redis_server.url)
    assert startup_problems(settings, conf, client) == []
    slow = settings.replace(time_limit=20, soft_time_limit=15)  # a batch may outlive VT 12 s
    assert any("task_time_limit" in p for p in startup_problems(slow, celery_config(slow, redis_server.url), client))
    partial = {**conf, "result_backend_transport_options": {}}
    assert any("all three places" in p for p in startup_problems(settings, partial, client))
    early_ack = {**conf, "task_acks_late": False}
    assert any("task_acks_late" in p for p in startup_problems(settings, early_ack, client))


def _cli(settings, *args: str) -> str:  # type: ignore[no-untyped-def]
    _, env = worker_command(settings)
    done = subprocess.run([sys.executable, "-m", "producer.cli.main", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cancel_stops_taking_documents_and_retry_requeues_only_failed(tmp_path: Path, redis_server: RedisServer,
                                                                      workers: WorkerPool) -> None:
    # Given one worker at ~50 ms per document and a 300-document job
    settings = short_settings(tmp_path, redis_server, model="py:tests.helpers.fake_tagger:make_slow_tagger",
                              batch_docs=8)
    workers.start(settings)
    job_id = submit_corpus(settings, make_texts(300, seed=4)).job_id
    wait_until(lambda: job_row(settings, job_id)["done"] >= 20, timeout=60, what="some documents done")

    # When `shiti cancel` is run mid-job
    out = _cli(settings, "cancel", job_id)
    done_at_cancel = job_row(settings, job_id)["done"]
    status = wait_terminal(settings, job_id, timeout=30)

    # Then only the batch in flight finishes, the rest is cancelled, and nothing runs afterwards
    assert "cancelling" in out or "cancelled" in out
    assert status["state"] == "cancelled"
    assert status["done"] <= done_at_cancel + settings.batch_docs
    assert status["done"] + status["cancelled"] == 300 and status["failed"] == 0
    time.sleep(2)
    rows = doc_rows(settings, job_id)
    assert sum(r["status"] == "done" for r in rows) == status["done"]
    assert all(r["attempts"] == 0 for r in rows if r["status"] == "cancelled")

    # Given a finished job with failed documents (model errors) and rejected input
    docs = make_texts(30, seed=6) + [{"id": f"raise-{i}", "text": f"张伟{i}[[RAISE]]"} for i in range(3)] \
        + [{"id": "surrogate", "text": "\ud800"}]
    job2 = submit_corpus(settings, docs).job_id
    assert wait_terminal(settings, job2, timeout=60)["state"] == "partially_failed"
    before = {r["ext_id"]: r for r in doc_rows(settings, job2)}

    # When `shiti retry` is run
    out = _cli(settings, "retry", job2)
    status = wait_terminal(settings, job2, timeout=60)

    # Then exactly the model failures ran again (and fail again); done and bad input are untouched
    assert "re-queued 3 documents" in out
    after = {r["ext_id"]: r for r in doc_rows(settings, job2)}
    rerun = {k for k in after if after[k]["updated_at"] != before[k]["updated_at"]}
    assert rerun == {"raise-0", "raise-1", "raise-2"}
    assert all(after[k]["attempts"] == 1 and after[k]["status"] == "failed" for k in rerun)
    assert after["surrogate"]["reason"] == "surrogate"
    assert (status["state"], status["done"], status["failed"]) == ("partially_failed", 30, 4)


def test_worker_with_a_corrupt_model_refuses_to_start_and_takes_no_task(tmp_path: Path,
                                                                        redis_server: RedisServer) -> None:
    import shutil

    from storage.core.settings import DEFAULT_MODEL

    # Given a queued job for a copy of the shipped model, whose graph was then truncated
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    settings = short_settings(tmp_path, redis_server, model=str(model))
    job = submit_corpus(settings, [dict(d) for d in make_texts(5)]).job_id
    graph = (model / "model.onnx").read_bytes()
    (model / "model.onnx").write_bytes(graph[: len(graph) // 2])
    # When a worker starts on it, Then it refuses at once, naming the file, and claims nothing
    argv, env = worker_command(settings)
    done = _start_worker_expecting_refusal(env, argv)
    assert done.returncode == 78
    assert "refusing to start: model 'model'" in done.stderr
    assert "model.onnx does not match its sha256 in manifest.json" in done.stderr
    assert {r["attempts"] for r in doc_rows(settings, job)} == {0}
    # And a new job for it is refused at submit, nothing stored
    with pytest.raises(PermanentError, match="cannot be served: model.onnx does not match"):
        submit_corpus(settings, [dict(d) for d in make_texts(5)])
