"""The multi-host topology, proven with network namespaces as hosts (docker-compose cannot run
here): Redis and PostgreSQL on one host, a worker pool per model on two more (each with its own
data and model directories: nothing shared but the network), the API on a fourth that has no
model files at all. Jobs of each model are processed only by that model's pool (the recorded
content hash, and entities equal to that model's own output); a pool host killed mid-job is
replaced by a new host and its job completes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.processes.launch import READY, worker_command
from storage.catalog import content_hash
from storage.broker.redis_server import ping, redis_executable
from storage.core.settings import REPO_ROOT, Settings
from tests.helpers.model_variants import copy_shipped, without_org
from tests.helpers.netns import Lan, lan
from tests.helpers.postgres import PgCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

SAMPLE = REPO_ROOT / "producer" / "samples" / "news.jsonl"


def _corpus(copies: int) -> list[dict[str, str]]:
    base = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    return [{"id": f"c{k}-{d['id']}", "text": d["text"]} for k in range(copies) for d in base]


def _start(net: Lan, host: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen([*net.prefix(host), *argv], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT)


def _wait_for(what: str, check: Any, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} not ready after {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


def _pool(net: Lan, host: str, tmp: Path, model: str, make_model: Any, base: Settings) -> tuple[Path, str]:
    """A worker pool host: its own data and models directories, one worker serving ``model``."""
    data, models = tmp / host / "data", tmp / host / "models"
    models.mkdir(parents=True)
    make_model(models / model)
    settings = base.replace(data_dir=data, models_dir=models, model=model)
    argv, env = worker_command(settings, hostname=f"{host}@{model}")
    log = tmp / f"{host}.log"
    _start(net, host, argv, env, log)
    _wait_for(f"worker on {host}", lambda: READY in log.read_bytes() and b"ready in" in log.read_bytes(), 180, log)
    return models / model, log


def test_two_model_pools_on_their_own_hosts_serve_only_their_jobs_and_survive_losing_a_host(tmp_path: Path) -> None:
    with lan("db", "pool-a", "pool-b", "api", "pool-b2") as net:
        # Given Redis and PostgreSQL on the "db" host
        db_addr = net.hosts["db"]
        redis_dir = tmp_path / "redis"
        redis_dir.mkdir()
        _start(net, "db", [redis_executable(), "--port", "6379", "--bind", db_addr, "--protected-mode", "no",
                           "--dir", str(redis_dir), "--appendonly", "yes", "--maxmemory-policy", "noeviction",
                           "--save", ""], dict(os.environ), tmp_path / "redis.log")
        redis_url = f"redis://{db_addr}:6379/0"
        _wait_for("redis", lambda: ping(redis_url, timeout=0.3), 30)
        pg = PgCluster(host=db_addr, wrap=net.prefix("db"))
        try:
            pg.start()
            base = Settings(database_url=pg.url, redis_url=redis_url, batch_docs=40)
            env = {**os.environ, **base.to_env(), "PYTHONPATH": str(REPO_ROOT)}

            # And the API on its own host, with no model files: it learns the models from the pools
            api_dir = tmp_path / "api"
            (api_dir / "models").mkdir(parents=True)
            api_env = {**env, "SHITI_DATA_DIR": str(api_dir), "SHITI_MODELS_DIR": str(api_dir / "models"),
                       "SHITI_MODEL": "zh"}
            cli = [sys.executable, "-m", "producer.cli.main"]
            migrate = subprocess.run([*net.prefix("api"), *cli, "db", "upgrade"], env=api_env, capture_output=True,
                                     text=True, timeout=120, cwd=REPO_ROOT)
            assert migrate.returncode == 0, migrate.stderr
            api_addr = net.hosts["api"]
            api_log = tmp_path / "api.log"
            _start(net, "api", [*cli, "serve", "--host", api_addr, "--port", "8000", "--insecure"], api_env, api_log)
            api = httpx.Client(base_url=f"http://{api_addr}:8000", timeout=30)

            def healthy() -> bool:
                try:
                    return api.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            _wait_for("api", healthy, 60, api_log)

            # And a worker pool per model, each on its own host with its own files
            model_a, log_a = _pool(net, "pool-a", tmp_path, "zh", copy_shipped, base)
            model_b, _ = _pool(net, "pool-b", tmp_path, "zh-no-org", without_org, base)
            hash_a, hash_b = content_hash(model_a), content_hash(model_b)
            assert hash_a != hash_b
            listed = {(m["name"], m["content_hash"]): m["workers"] for m in api.get("/models").json()}
            assert listed[("zh", hash_a)] == 1 and listed[("zh-no-org", hash_b)] == 1

            # When a job for each model is submitted to the API
            docs = _corpus(4)
            jobs = {}
            for model in ("zh", "zh-no-org"):
                got = api.post(f"/jobs?model={model}", json=docs)
                assert got.status_code == 202, got.text
                jobs[model] = got.json()["job_id"]
            assert api.post("/jobs?model=zh-typo", json=docs).json()["error"]["message"].startswith(
                "unknown model 'zh-typo'; known: zh, zh-no-org")

            # And pool B's whole host dies mid-job
            def b_status() -> dict[str, Any]:
                return api.get(f"/jobs/{jobs['zh-no-org']}").json()  # type: ignore[no-any-return]

            _wait_for("progress of job B", lambda: b_status()["done"] > 0, 120)
            assert b_status()["state"] == "running", "job B finished before the kill: make it bigger"
            assert net.kill_host("pool-b") >= 2  # the worker parent and its pool child
            _wait_for("job B to notice", lambda: b_status()["workers"] == 0, 30)
            assert b_status()["waiting_for"] == "a worker serving zh-no-org"

            # Then a replacement pool on a new host finishes it
            _pool(net, "pool-b2", tmp_path, "zh-no-org", without_org, base)
            final: dict[str, dict[str, Any]] = {}
            for model, job in jobs.items():
                deadline = time.monotonic() + 300
                while (s := api.get(f"/jobs/{job}").json())["state"] not in ("succeeded", "failed", "partially_failed"):
                    assert time.monotonic() < deadline, s
                    time.sleep(0.5)
                final[model] = s
            assert final["zh"]["state"] == final["zh-no-org"]["state"] == "succeeded"
            assert (final["zh"]["model_hash"], final["zh-no-org"]["model_hash"]) == (hash_a, hash_b)
            assert final["zh"]["done"] == final["zh-no-org"]["done"] == len(docs)

            # And each job holds exactly its own model's output (no batch went to the other pool)
            exported = {model: [json.loads(line) for line in api.get(f"/jobs/{job}/export").text.splitlines()]
                        for model, job in jobs.items()}
            assert {r["model_hash"] for r in exported["zh"]} == {hash_a}
            from storage.core.fold import fold
            from worker.tagger.loading import load_tagger

            for model, path in (("zh", model_a), ("zh-no-org", model_b)):  # jobs fold by default
                want = load_tagger(path).annotate([fold(d["text"]) for d in docs])
                got_rows = {r["doc_id"]: [(e["start"], e["end"], e["label"]) for e in r["entities"]]
                            for r in exported[model]}
                assert got_rows == {d["id"]: [(e.start, e.end, e.label) for e in found]
                                    for d, found in zip(docs, want)}, model
            labels = {model: {e["label"] for r in rows for e in r["entities"]} for model, rows in exported.items()}
            assert "ORG" in labels["zh"] and "ORG" not in labels["zh-no-org"]
            assert "this worker serves sha256" not in log_a.read_text()
        finally:
            pg.remove()
