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


def _post(client: TestClient, jid: str, body: str | bytes, tool: str = "label-studio"):  # type: ignore[no-untyped-def]
    return client.post(f"/jobs/{jid}/corrections", params={"from": tool}, content=body,
                       headers={"content-type": "application/json"})


HOSTILE = [
    # lone surrogates and NULs arrive as JSON escapes
    ('[{"id": 1, "data": {"text": "\\ud800", "doc_id": "d00"}, "annotations": [{"result": []}]}]', "surrogate"),
    ('[{"id": 1, "data": {"text": "x", "doc_id": "\\ud800"}, "annotations": [{"result": []}]}]', "surrogate"),
    ('[{"id": 1, "data": {"text": "x", "doc_id": "a\\u0000b"}, "annotations": [{"result": []}]}]', "NUL"),
    ('[{"id": 1, "data": {"text": "x\\u0000", "doc_id": "d00"}, "annotations": [{"result": []}]}]', "NUL"),
    ('[{"id": 1, "data": {"text": "x", "doc_id": "' + "d" * 2000 + '"}, "annotations": [{"result": []}]}]',
     "limit"),
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ('[{"id": 1, "data": {"text": "x"}, "annotations": 5}]', "annotations"),
    ('[{"id": 1, "data": {"text": "x"}, "predictions": {"a": 1}}]', "predictions"),
    ('[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": true, "end": 1, "labels": ["PER"]}}]}]}]', "not character positions"),
    ('[{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [{"type": "labels", "value": '
     '{"start": 0, "end": 99999999999999999999999, "labels": ["PER"]}}]}]}]', "outside the text"),
    ('{"not": "a list"}', "JSON list"),
]


def test_hostile_corrections_get_a_clear_422_and_store_nothing(client: TestClient, settings: Settings) -> None:
    jid = _job(client, settings)
    before = len(client.get("/jobs").json()["items"])
    for body, why in HOSTILE:
        got = _post(client, jid, body)
        assert got.status_code == 422, (body[:80], got.status_code, got.text[:300])
        assert why in got.json()["error"]["message"], (body[:80], got.json())
    doccano = ['{"text": "x", "entities": 5}', '{"text": "x", "label": [[true, 1, "PER"]]}',
               '{"text": "x\\ud800", "label": []}', '{"text": "x", "label": [], "doc_id": {"a": 1}}']
    for line in doccano:
        got = _post(client, jid, line, tool="doccano")
        assert got.status_code == 422, (line, got.status_code, got.text[:300])
    conll = "-DOCSTART-\tbad\x00id\n张\tB-PER\n\n"
    got = client.post(f"/jobs/{jid}/corrections", params={"from": "conll"}, content=conll.encode(),
                      headers={"content-type": "text/plain"})
    assert got.status_code == 422 and "NUL" in got.json()["error"]["message"]
    assert len(client.get("/jobs").json()["items"]) == before  # no corrections job was made
