"""The correction loop over HTTP: export in an annotation format, sample, the labeling config,
corrections posted back as gold (a bad task answers 422 naming it, nothing stored)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from storage.core.settings import Settings
from tests.api.conftest import submit, work
from tests.api.test_entities import DOCS


def _job(client: TestClient, settings: Settings) -> str:
    jid = submit(client, DOCS[:6])
    work(settings, jid)
    return jid


def test_label_studio_round_trip_over_http(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings)
    got = client.get(f"/jobs/{jid}/export", params={"format": "label-studio"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")
    assert got.headers["content-disposition"].endswith(f'shiti-{jid}.json"')
    tasks = got.json()
    assert [t["data"]["doc_id"] for t in tasks] == [d["id"] for d in DOCS[:6]]
    config = client.get(f"/jobs/{jid}/label-config")
    assert config.status_code == 200 and '<Label value="PER"/>' in config.text
    # The annotator deletes the first entity of the first task
    tasks[0]["annotations"] = [{"id": 1, "result": tasks[0]["predictions"][0]["result"][1:]}]
    posted = client.post(f"/jobs/{jid}/corrections", params={"from": "label-studio"}, content=json.dumps(tasks),
                         headers={"content-type": "application/json"})
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert (body["documents"], body["skipped"]) == (1, 5)
    diff = client.get(f"/jobs/{jid}/diff/{body['gold_job']}").json()
    assert diff["documents"] == 1 and diff["counts"] == {"only_a": 1, "only_b": 0, "changed": 0}
    assert client.get(f"/jobs/{body['gold_job']}").json()["gold_of"] == jid
    sampled = client.get(f"/jobs/{jid}/sample", params={"n": 10, "by": "random", "seed": 3, "format": "doccano"})
    assert sampled.status_code == 200
    ids = [json.loads(line)["doc_id"] for line in sampled.text.splitlines()]
    assert len(ids) == 5 == len(set(ids)) and DOCS[0]["id"] not in ids  # the corrected one is left out


def test_a_bad_task_answers_422_with_its_id_and_stores_nothing(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings)
    tasks = client.get(f"/jobs/{jid}/export", params={"format": "label-studio"}).json()
    tasks[2]["id"] = 77
    tasks[2]["annotations"] = [{"result": [{"type": "labels", "value": {"start": 0, "end": 2, "labels": ["GPE"]}}]}]
    got = client.post(f"/jobs/{jid}/corrections", content=json.dumps(tasks),
                      headers={"content-type": "application/json"})
    assert got.status_code == 422
    error = got.json()["error"]
    assert error["task"] == "77" and "'GPE' at 0..2 is not one the model tags" in error["message"]
    assert client.get("/jobs").json()["items"][0]["job_id"] == jid  # no corrections job was made
    bad = client.get(f"/jobs/{jid}/export", params={"format": "xml"})
    assert bad.status_code == 422
    bad = client.get(f"/jobs/{jid}/export", params={"format": "conll", "offsets": "utf16"})
    assert bad.status_code == 422 and "no offsets" in bad.json()["error"]["message"]
