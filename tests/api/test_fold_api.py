"""The fold option through the REST API: on by default, off by query, form field or JSON key, a
bad value refused with nothing stored."""

from __future__ import annotations

from fastapi.testclient import TestClient

from storage.core.fold import fold_id
from tests.api.conftest import assert_error, submit, work

DOCS = [{"id": "1", "text": "記者張偉從廣州報道。"}]


def test_fold_is_on_by_default_and_each_way_of_saying_off_turns_it_off(client: TestClient, settings) -> None:
    on = submit(client, DOCS)
    work(settings, on)
    assert client.get(f"/jobs/{on}").json()["fold"] == fold_id()
    doc = client.get(f"/jobs/{on}/documents/1").json()
    assert [(e["text"], e["label"]) for e in doc["entities"]] == [("張偉", "PER"), ("廣州", "LOC")]
    off_query = submit(client, DOCS, fold="false")
    off_json = client.post("/jobs", json={"documents": DOCS, "fold": False}).json()["job_id"]
    off_form = client.post("/jobs", files={"file": ("c.jsonl", b'{"id": "1", "text": "x"}\n')},
                           data={"fold": "false"}).json()["job_id"]
    for job in (off_query, off_json, off_form):
        assert client.get(f"/jobs/{job}").json()["fold"] is None, job
    rerun = client.post(f"/jobs/{on}/rerun", params={"fold": "false"}).json()["job_id"]
    assert client.get(f"/jobs/{rerun}").json()["fold"] is None


def test_a_fold_that_is_not_yes_or_no_is_refused_and_stores_nothing(client: TestClient) -> None:
    before = client.get("/jobs").json()["items"]
    assert_error(client.post("/jobs", json={"documents": DOCS, "fold": "maybe"}), 422, "invalid_input")
    assert_error(client.post("/jobs", files={"file": ("c.jsonl", b'{"id": "1", "text": "x"}\n')},
                             data={"fold": "maybe"}), 422, "invalid_input")
    assert_error(client.post("/jobs", json=DOCS, params={"fold": "maybe"}), 422, "invalid_input")
    assert client.get("/jobs").json()["items"] == before
