"""The REST side of per-job models: GET /models, the model/priority/notify options at submit (bad
ones store nothing), provenance in status and export, rerun and diff."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from producer.api.app import create_app
from storage.sql import queries
from storage.sql.db import get_database
from storage.catalog import resolve
from storage.core.settings import Settings
from tests.api.conftest import assert_error, submit, work
from tests.helpers.model_variants import copy_shipped, without_org

DOCS = [{"id": "a", "text": "张伟在北京大学读书。"}, {"id": "b", "text": "王芳去了上海。"}]


def test_models_are_listed_and_a_job_records_the_one_it_names(settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    copy_shipped(models / "shiti-zh-small")
    without_org(models / "no-org")
    settings = settings.replace(models_dir=models)
    with TestClient(create_app(settings)) as client:
        listed = {m["name"]: m for m in client.get("/models").json()}
        assert set(listed) == {"shiti-zh-small", "no-org"}
        assert listed["no-org"]["ok"] and listed["no-org"]["labels"] == ["LOC", "ORG", "PER"]
        assert listed["no-org"]["workers"] == 0 and listed["no-org"]["content_hash"] == resolve(settings, "no-org").content_hash

        job = submit(client, DOCS, model="no-org", priority="3")
        status = client.get(f"/jobs/{job}").json()
        assert (status["model"], status["model_hash"], status["priority"]) == (
            "no-org", listed["no-org"]["content_hash"], 3)
        # No broker: whether a worker serves it is unknown, not "none"
        assert status["workers"] is None and status["waiting_for"] is None
        # The options may also be JSON keys
        body = {"documents": DOCS, "model": "shiti-zh-small", "priority": 2}
        got = client.post("/jobs", json=body).json()["job_id"]
        assert client.get(f"/jobs/{got}").json()["priority"] == 2

        work(settings, job)
        records = [json.loads(line) for line in client.get(f"/jobs/{job}/export").text.splitlines()]
        assert {(r["model"], r["model_hash"]) for r in records} == {("no-org", listed["no-org"]["content_hash"])}


def test_bad_options_are_refused_and_store_nothing(client: TestClient, settings: Settings) -> None:
    err = assert_error(client.post("/jobs", json=DOCS, params={"model": "nope"}), 422, "invalid_input")
    assert err["message"].startswith("unknown model 'nope'; known: shiti-zh-small")
    assert_error(client.post("/jobs", json=DOCS, params={"priority": "0"}), 422, "invalid_input")
    err = assert_error(client.post("/jobs", json={"documents": DOCS, "priority": "x"}), 422, "invalid_input")
    assert "priority must be an integer" in err["message"]
    for url in ("ftp://example.com/x", "http://127.0.0.1:9/hook", "http://10.1.2.3/hook"):
        err = assert_error(client.post("/jobs", json=DOCS, params={"notify": url}), 422, "invalid_input")
        assert "webhook" in err["message"]
    err = assert_error(client.post("/extract", json={"text": "张伟", "model": "nope"}), 422, "invalid_input")
    assert "unknown model 'nope'" in err["message"]
    assert queries.list_jobs(get_database(settings))[0] == []


def test_rerun_and_diff(client: TestClient, settings: Settings) -> None:
    first = submit(client, DOCS)
    work(settings, first)
    got = client.post(f"/jobs/{first}/rerun", params={"priority": "2"})
    assert got.status_code == 202 and got.headers["Location"] == f"/jobs/{got.json()['job_id']}"
    second = got.json()["job_id"]
    status = client.get(f"/jobs/{second}").json()
    assert (status["rerun_of"], status["total"], status["priority"]) == (first, 2, 2)
    work(settings, second)
    diff = client.get(f"/jobs/{first}/diff/{second}").json()  # the same (fake) model: no difference
    assert diff["counts"] == {"only_a": 0, "only_b": 0, "changed": 0} and diff["documents"] == 2
    other = submit(client, [{"id": "z", "text": "李娜在广州。"}])
    err = assert_error(client.get(f"/jobs/{first}/diff/{other}"), 422, "invalid_input")
    assert "do not hold the same documents" in err["message"]
    assert_error(client.post(f"/jobs/{'0' * 32}/rerun"), 404, "not_found")
    assert_error(client.post(f"/jobs/{first}/rerun", params={"model": "nope"}), 422, "invalid_input")
