"""Submitting, listing, polling, cancelling and retrying jobs over HTTP."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient

from storage.core.settings import Settings
from tests.api.conftest import assert_error, submit, work

DOCS = [
    {"id": "a", "text": "张伟在北京大学读书。"},
    {"id": "b", "text": "王芳去上海出差，拜访了阿里巴巴。"},
    {"id": "c", "text": "今天天气很好。"},
]


def test_submit_json_list_then_status(client: TestClient) -> None:
    response = client.post("/jobs", json=DOCS)
    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True and body["documents"] == 3 and body["rejected"] == 0
    assert response.headers["location"] == f"/jobs/{body['job_id']}"

    status = client.get(f"/jobs/{body['job_id']}").json()
    assert status["job_id"] == body["job_id"]
    assert status["total"] == 3 and status["pending"] == 3 and status["done"] == 0
    assert status["chars_total"] == sum(len(d["text"]) for d in DOCS)
    for key in ("state", "failed", "processing", "cancelled", "chars_done", "docs_per_second",
                "chars_per_second", "eta_seconds", "submitted_at", "started_at", "finished_at", "failures"):
        assert key in status


def test_job_runs_to_succeeded(client: TestClient, settings: Settings) -> None:
    job_id = submit(client, DOCS)
    work(settings, job_id)
    status = client.get(f"/jobs/{job_id}").json()
    assert status["state"] == "succeeded"
    assert status["done"] == 3 and status["pending"] == 0 and status["eta_seconds"] == 0


def test_submit_object_form_with_options(client: TestClient) -> None:
    body = {"documents": [{"key": "k1", "body": "李娜在杭州。"}], "name": "custom", "id_field": "key",
            "text_field": "body"}
    response = client.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert client.get(f"/jobs/{job_id}").json()["name"] == "custom"
    assert client.get(f"/jobs/{job_id}/documents/k1").json()["text"] == "李娜在杭州。"


def test_client_token_makes_submit_idempotent(client: TestClient) -> None:
    first = client.post("/jobs", json=DOCS, params={"client_token": "tok-1"})
    again = client.post("/jobs", json=DOCS, headers={"Idempotency-Key": "tok-1"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"] and again.json()["created"] is False
    assert client.get(f"/jobs/{first.json()['job_id']}").json()["total"] == 3


def _upload(client: TestClient, filename: str, content: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post("/jobs", files={"file": (filename, content)}, data=form)


def test_upload_jsonl_csv_txt_and_json_files(client: TestClient) -> None:
    jsonl = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS).encode()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["id", "text"])
    writer.writeheader()
    writer.writerows(DOCS)
    txt = "".join(d["text"] + "\n" for d in DOCS).encode()
    array = json.dumps(DOCS, ensure_ascii=False).encode()
    for name, content in [("c.jsonl", jsonl), ("c.csv", buf.getvalue().encode()), ("c.txt", txt),
                          ("c.json", array)]:
        response = _upload(client, name, content)
        assert response.status_code == 202, (name, response.text)
        job = client.get(f"/jobs/{response.json()['job_id']}").json()
        assert job["total"] == 3, name
        assert job["name"] == name
    # An explicit format wins over the file name.
    response = _upload(client, "corpus.dat", jsonl, format="jsonl", name="named", client_token="up-1")
    assert response.status_code == 202
    job = client.get(f"/jobs/{response.json()['job_id']}").json()
    assert job["total"] == 3 and job["name"] == "named"
    assert _upload(client, "corpus.dat", jsonl, format="jsonl", client_token="up-1").status_code == 200


def test_upload_counts_rejected_documents(client: TestClient) -> None:
    content = b'{"id": "ok", "text": "\xe5\x8c\x97\xe4\xba\xac"}\nnot json at all\n'
    response = _upload(client, "mixed.jsonl", content)
    assert response.status_code == 202
    assert response.json()["documents"] == 2 and response.json()["rejected"] == 1


def test_upload_leaves_no_spooled_files(client: TestClient, settings: Settings) -> None:
    _upload(client, "c.txt", "北京\n上海\n".encode())
    uploads = settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_list_jobs_pages_without_overlap_and_filters(client: TestClient, settings: Settings) -> None:
    ids = [submit(client, [{"id": "1", "text": f"北京{i}"}]) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/jobs", params=params).json()
        assert len(page["items"]) <= 2
        seen += [j["job_id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once

    work(settings, ids[0])
    done = client.get("/jobs", params={"state": "succeeded"}).json()["items"]
    assert [j["job_id"] for j in done] == [ids[0]]
    running = client.get("/jobs", params={"state": "submitted"}).json()["items"]
    assert ids[0] not in [j["job_id"] for j in running] and len(running) == 4
    # Unfinished jobs carry live progress fields for the dashboard.
    assert {"docs_per_second", "eta_seconds", "pending"} <= set(running[0])


def test_cancel_then_cancel_again_conflicts(client: TestClient) -> None:
    job_id = submit(client, DOCS)
    response = client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] in ("cancelling", "cancelled")
    assert response.json()["cancelled"] == 3
    assert_error(client.post(f"/jobs/{job_id}/cancel"), 409, "invalid_transition")


def test_retry_requeues_failed_documents(client: TestClient, settings: Settings) -> None:
    job_id = submit(client, DOCS + [{"id": "bad", "text": "北京[[RAISE]]"}])
    work(settings, job_id)
    status = client.get(f"/jobs/{job_id}").json()
    assert status["state"] == "partially_failed" and status["failed"] == 1
    assert status["failures"][0]["doc_id"] == "bad" and status["failures"][0]["error"]

    response = client.post(f"/jobs/{job_id}/retry")
    assert response.status_code == 200
    assert response.json()["requeued"] == 1 and response.json()["state"] == "running"
    assert client.get(f"/jobs/{job_id}").json()["failed"] == 0


def test_retry_of_a_succeeded_job_conflicts(client: TestClient, settings: Settings) -> None:
    job_id = submit(client, DOCS)
    work(settings, job_id)
    assert_error(client.post(f"/jobs/{job_id}/retry"), 409, "invalid_transition")


def test_states_serves_the_domain_state_machine(client: TestClient) -> None:
    from storage.core.domain import DOC_TRANSITIONS, JOB_TERMINAL, JOB_TRANSITIONS, JobStatus

    got = client.get("/states").json()
    assert got["job"]["states"] == [s.value for s in JobStatus]
    assert set(got["job"]["terminal"]) == {s.value for s in JOB_TERMINAL}
    assert got["job"]["transitions"]["running"] == sorted(s.value for s in JOB_TRANSITIONS[JobStatus.RUNNING])
    assert set(got["document"]["transitions"]) == {s.value for s in DOC_TRANSITIONS}


def test_failed_documents_page_by_reason(client: TestClient, settings: Settings) -> None:
    docs = [{"id": f"s{i}", "text": "\ud800"} for i in range(3)] + [{"id": "ok", "text": "张伟在北京。"}, {"id": "e"}]
    # json.dumps escapes the lone surrogates (\ud800): valid JSON a client can send
    got = client.post("/jobs", content=json.dumps(docs), headers={"content-type": "application/json"})
    assert got.status_code in (200, 201, 202), got.text
    jid = got.json()["job_id"]
    work(settings, jid)
    first = client.get(f"/jobs/{jid}/failures", params={"limit": 2}).json()
    assert first["by_reason"] == {"surrogate": 3, "missing_field": 1}
    assert [f["doc_id"] for f in first["items"]] == ["s0", "s1"] and first["next_cursor"]
    rest = client.get(f"/jobs/{jid}/failures", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    only = client.get(f"/jobs/{jid}/failures", params={"reason": "surrogate", "limit": 10}).json()
    assert [f["doc_id"] for f in only["items"]] == ["s0", "s1", "s2"] and only["next_cursor"] is None
    assert {f["reason"] for f in only["items"]} == {"surrogate"} and all(f["line"] for f in only["items"])
    assert len(first["items"]) + len(rest["items"]) == sum(first["by_reason"].values())
    assert client.get("/jobs/" + "0" * 32 + "/failures").status_code == 404
