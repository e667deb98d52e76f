"""Every input gets a defined answer, on SQLite and PostgreSQL: never a 500, always the JSON
envelope and the security headers, nothing half-stored, and every record sent accounted for."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select

from producer import fields, service
from producer.api.app import create_app
from storage.sql import keys as api_keys
from storage.sql import repo
from storage.sql.db import get_database
from storage.core.domain import JOB_OPEN
from storage.sql.schema import document, job
from storage.core.settings import Settings
from tests.api.conftest import assert_error

ODD = ["\x00", "\ud800", "\udfff", "\udc80", "\x1f", "\u2028", "😀", "ｆｕｌｌ", "\r\n", "", " ", "²", "9" * 30]
#: Strings with everything that breaks naive storage: NUL, lone surrogates, controls, emoji, and
#: lengths at and past every field limit.
NASTY = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=20),
    st.lists(st.sampled_from(ODD), max_size=4).map("".join),
    st.sampled_from([fields.MAX_DOC_ID, fields.MAX_DOC_ID + 1, fields.MAX_NAME, fields.MAX_NAME + 1,
                     fields.MAX_CLIENT_TOKEN, fields.MAX_CLIENT_TOKEN + 1]).map(lambda n: "x" * n),
)
NESTED = "[" * 5000 + "]" * 5000


def check_response(response: Any) -> None:
    """The promises every answer keeps: no 5xx but 503/504, the envelope on every error, headers."""
    assert response.status_code < 500 or response.status_code in (503, 504), response.text
    assert "Content-Security-Policy" in response.headers and response.headers["X-Content-Type-Options"] == "nosniff"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and isinstance(body["error"]["code"], str), body


def no_half_stored_job(settings: Settings) -> None:
    """Every open job has all its documents stored (sealed): none waits for ever."""
    with get_database(settings).read() as conn:
        stuck = conn.execute(select(job.c.id, job.c.status).where(
            job.c.sealed.is_(False), job.c.status.in_(sorted(JOB_OPEN)))).all()
    assert stuck == []


document_items = st.one_of(
    st.fixed_dictionaries({"id": NASTY, "text": NASTY}),
    st.fixed_dictionaries({"id": st.one_of(st.integers(), st.floats(), st.booleans(), st.none()), "text": NASTY}),
    st.fixed_dictionaries({"text": st.one_of(NASTY, st.integers())}),
    st.one_of(st.integers(), st.none(), NASTY),  # not an object: a malformed record
)


def _raw_body(docs: list[Any], options: dict[str, Any], nested: bool) -> bytes:
    body = json.dumps({"documents": docs, **options} if options else docs)  # ensure_ascii: surrogates as \\ud800
    if nested:  # a document whose id is nested thousands deep: the whole body is invalid for the parser
        body = body[:-1] + ("," if docs else "") + '{"id": ' + NESTED + ', "text": "x"}]' + ("}" if options else "")
    return body.encode()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(docs=st.lists(document_items, max_size=6),
       options=st.dictionaries(st.sampled_from(["name", "client_token", "model", "notify", "priority",
                                                "id_field", "text_field"]),
                               st.one_of(NASTY, st.integers(-5, 200)), max_size=3),
       nested=st.booleans())
def test_json_submits_never_500_and_account_for_every_record(settings: Settings, client: TestClient,
                                                            docs: list[Any], options: dict[str, Any],
                                                            nested: bool) -> None:
    response = client.post("/jobs", content=_raw_body(docs, options, nested),
                           headers={"content-type": "application/json"})
    check_response(response)
    if response.status_code == 202:
        got = response.json()
        # Every record sent has a row: stored, or rejected with a reason
        assert got["lines"] == got["documents"] == len(docs), got
        with get_database(settings).read() as conn:
            reasons = conn.execute(select(document.c.status, document.c.reason).where(
                document.c.job_id == got["job_id"])).all()
        assert len(reasons) == len(docs)
        assert sum(1 for status, _ in reasons if status == "failed") == got["rejected"]
    else:
        assert response.status_code in (413, 422), response.text
    no_half_stored_job(settings)


def _jsonl(lines: list[Any]) -> bytes:
    out = []
    for line in lines:
        if line == "NESTED":
            out.append(('{"id": "deep", "text": ' + NESTED + "}").encode())
        elif isinstance(line, bytes):
            out.append(line)
        else:
            out.append(json.dumps(line).encode())
    return b"\n".join(out) + b"\n"


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(document_items, st.just("NESTED"), st.just(b"{not json"), st.just(b"\xff\xfe"),
                                st.just(b"1" * 5000)), min_size=1, max_size=6),
       name=st.one_of(st.none(), NASTY))
def test_jsonl_uploads_never_500_and_account_for_every_line(settings: Settings, client: TestClient,
                                                            lines: list[Any], name: str | None) -> None:
    data = {"name": name.encode("utf-8", "surrogatepass")} if name is not None else {}
    response = client.post("/jobs", files={"file": ("c.jsonl", _jsonl(lines))}, data=data)
    check_response(response)
    if response.status_code == 202:
        got = response.json()
        assert got["lines"] == got["documents"] == len(lines), got
    else:
        assert response.status_code == 422, response.text
    no_half_stored_job(settings)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=NASTY, where=st.sampled_from(["job", "doc", "text", "type", "cursor", "state", "limit"]))
def test_path_and_query_values_never_500(settings: Settings, client: TestClient, value: str, where: str) -> None:
    job_id = service.submit_corpus(settings, [{"id": "a", "text": "张伟在北京"}], name="q").job_id
    safe = quote(value.encode("utf-8", "surrogatepass"), safe="")
    if where == "job":
        urls = [f"/jobs/{safe}", f"/jobs/{safe}/entities", f"/jobs/{safe}/export", f"/jobs/{job_id}/diff/{safe}"]
    elif where == "doc":
        urls = [f"/jobs/{job_id}/documents/{safe}"]
    elif where in ("text", "type", "cursor"):
        urls = [f"/jobs/{job_id}/entities?{where}={safe}", f"/jobs?cursor={safe}"]
    else:
        urls = [f"/jobs?{where}={safe}"]
    for url in urls:
        check_response(client.get(url))


# ---------------------------------------------------------------------------------- one by one


@pytest.mark.parametrize("bad_id", ["\ud800", "a\x00b", "x" * (fields.MAX_DOC_ID + 1)])
def test_a_bad_document_id_is_a_failed_row_and_its_neighbours_are_stored(client: TestClient, settings: Settings,
                                                                         bad_id: str) -> None:
    body = json.dumps([{"id": "ok1", "text": "张伟"}, {"id": bad_id, "text": "北京"}, {"id": "ok2", "text": "上海"}])
    got = client.post("/jobs", content=body.encode(), headers={"content-type": "application/json"})
    assert got.status_code == 202, got.text
    assert (got.json()["documents"], got.json()["rejected"]) == (3, 1)
    doc = client.get(f"/jobs/{got.json()['job_id']}/documents/line:2").json()
    assert (doc["state"], doc["reason"]) == ("failed", "bad_id")
    assert client.get(f"/jobs/{got.json()['job_id']}/documents/ok2").json()["state"] == "pending"


@pytest.mark.parametrize(("field", "value"), [("name", "n\x00"), ("name", "x" * (fields.MAX_NAME + 1)),
                                              ("client_token", "t\x00"), ("client_token", "\ud800"),
                                              ("client_token", "t" * (fields.MAX_CLIENT_TOKEN + 1))])
def test_a_bad_job_level_value_is_422_and_stores_nothing(client: TestClient, settings: Settings, field: str,
                                                         value: str) -> None:
    body = json.dumps({"documents": [{"id": "a", "text": "张伟"}], field: value})
    error = assert_error(client.post("/jobs", content=body.encode(), headers={"content-type": "application/json"}),
                         422, "invalid_input")
    assert field.replace("_", " ") in error["message"]
    with get_database(settings).read() as conn:
        assert conn.execute(select(job.c.id)).all() == []


def test_duplicate_ids_are_failed_rows_with_a_reason(client: TestClient) -> None:
    lines = b'{"id": "a", "text": "\\u5f20\\u4f1f"}\n{"id": "b", "text": "x"}\n{"id": "a", "text": "y"}\n'
    got = client.post("/jobs", files={"file": ("c.jsonl", lines)})
    assert got.status_code == 202 and (got.json()["documents"], got.json()["rejected"], got.json()["lines"]) == (3, 1, 3)
    failures = client.get(f"/jobs/{got.json()['job_id']}").json()["failures"]
    assert [(f["reason"], f["error"]) for f in failures] == [("duplicate_id", "line 3: document id 'a' already at line 1")]


def test_deep_nesting_is_malformed_for_a_line_and_422_for_a_body(client: TestClient) -> None:
    got = client.post("/jobs", files={"file": ("c.jsonl", _jsonl(["NESTED", {"id": "ok", "text": "北京"}]))})
    assert got.status_code == 202, got.text
    doc = client.get(f"/jobs/{got.json()['job_id']}/documents/line:1").json()
    assert (doc["state"], doc["reason"]) == ("failed", "malformed") and "nested too deeply" in doc["error"]
    error = assert_error(client.post("/jobs", content=NESTED.encode(), headers={"content-type": "application/json"}),
                         422, "invalid_input")
    assert "nested too deeply" in error["message"]


@pytest.mark.parametrize("cursor", [str(2**63), "9" * 40, "²", "１２", "-1"])
def test_cursors_past_the_range_or_not_ascii_digits_are_422(client: TestClient, cursor: str) -> None:
    assert_error(client.get("/jobs", params={"cursor": cursor}), 422, "invalid_input")


def test_nul_in_a_path_is_not_found_and_in_a_filter_is_422(client: TestClient, settings: Settings) -> None:
    job_id = service.submit_corpus(settings, [{"id": "a", "text": "北京"}]).job_id
    assert_error(client.get("/jobs/a%00b"), 404, "not_found")
    assert_error(client.get(f"/jobs/{job_id}/documents/a%00b"), 404, "not_found")
    assert_error(client.get(f"/jobs/{job_id}/entities", params={"text": "a\x00b"}), 422, "invalid_input")


def test_an_unexpected_error_is_the_envelope_with_a_request_id_and_headers(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    job_id = service.submit_corpus(settings, [{"id": "a", "text": "北京"}]).job_id

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "job_status", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        got = client.get(f"/jobs/{job_id}")
    error = assert_error(got, 500, "internal")
    assert error["request_id"] in error["message"] and "a bug" not in error["message"]
    assert "Content-Security-Policy" in got.headers
    assert any(error["request_id"] in r.getMessage() and r.exc_info for r in caplog.records)


def test_405_says_which_methods_are_allowed(client: TestClient) -> None:
    got = client.delete("/jobs")
    assert_error(got, 405, "method_not_allowed")
    assert set(got.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_the_bearer_scheme_is_case_insensitive(settings: Settings) -> None:
    key = api_keys.create_key(get_database(settings), name="k", scope="read")
    with TestClient(create_app(settings)) as client:
        for scheme in ("Bearer", "bearer", "BEARER"):
            assert client.get("/whoami", headers={"Authorization": f"{scheme} {key}"}).status_code == 200


def test_a_json_body_over_its_limit_is_413_before_it_is_parsed(settings: Settings) -> None:
    with TestClient(create_app(settings.replace(max_json_bytes=1000))) as client:
        body = json.dumps([{"id": str(i), "text": "北京" * 10} for i in range(50)]).encode()
        error = assert_error(client.post("/jobs", content=body, headers={"content-type": "application/json"}),
                             413, "payload_too_large")
        assert "multipart" in error["message"]


def test_an_api_document_over_the_api_size_cap_fails_too_large(settings: Settings) -> None:
    with TestClient(create_app(settings.replace(max_api_doc_chars=100))) as client:
        got = client.post("/jobs", json=[{"id": "big", "text": "北" * 101}, {"id": "ok", "text": "北" * 100}])
        assert got.status_code == 202 and got.json()["rejected"] == 1
        doc = client.get(f"/jobs/{got.json()['job_id']}/documents/big").json()
        assert (doc["state"], doc["reason"]) == ("failed", "too_large")


@pytest.mark.parametrize("limit", ["docs", "chars"])
def test_the_per_key_quota_holds_for_multipart_uploads(settings: Settings, limit: str) -> None:
    limits = {"max_queued_per_key": 50} if limit == "docs" else {"max_queued_chars_per_key": 500}
    settings = settings.replace(**limits)
    key = api_keys.create_key(get_database(settings), name="q", scope="submit")
    lines = b"".join(json.dumps({"id": str(i), "text": "北京大学"}).encode() + b"\n" for i in range(1000))
    with TestClient(create_app(settings)) as client:
        got = client.post("/jobs", files={"file": ("c.jsonl", lines)}, headers={"Authorization": f"Bearer {key}"})
        assert_error(got, 429, "too_many_requests")
        assert got.headers["Retry-After"]
        # Nothing of it is stored
        with get_database(settings).read() as conn:
            assert conn.execute(select(job.c.id)).all() == [] and conn.execute(select(document.c.id)).all() == []
        small = b'{"id": "1", "text": "\\u5317\\u4eac"}\n'
        assert client.post("/jobs", files={"file": ("c.jsonl", small)},
                           headers={"Authorization": f"Bearer {key}"}).status_code == 202


def test_the_spool_path_never_shows_in_an_error(client: TestClient, settings: Settings) -> None:
    error = assert_error(client.post("/jobs", files={"file": ("mine.csv", b"a,b\n1,2\n")}), 422, "invalid_input")
    assert "mine.csv" in error["message"] and str(settings.data_dir) not in error["message"]


# ---------------------------------------------------------------------------------- never half-stored


def test_an_ingest_that_fails_part_way_fails_the_job_and_a_resubmit_resumes_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings.replace(ingest_chunk=2)
    docs = [{"id": str(i), "text": "张伟在北京"} for i in range(5)]
    real = repo.insert_documents
    calls = {"n": 0}

    def flaky(db: Any, job_id: str, rows: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(db, job_id, rows)

    monkeypatch.setattr(repo, "insert_documents", flaky)
    with pytest.raises(OSError):
        service.submit_corpus(settings, docs, client_token="tok")
    with get_database(settings).read() as conn:
        (row,) = conn.execute(select(job.c.id, job.c.status, job.c.sealed, job.c.error)).all()
    assert (row.status, row.sealed) == ("failed", True)
    assert row.error.startswith("ingest failed after 2 documents were stored: OSError: disk full")
    assert service.job_status(settings, row.id)["error"] == row.error
    # The same token again re-reads the corpus and completes the same job
    again = service.submit_corpus(settings, docs, client_token="tok")
    assert (again.job_id, again.created, again.documents, again.rejected) == (row.id, False, 5, 0)
    status = service.job_status(settings, row.id)
    assert (status["state"], status["pending"], status["cancelled"]) == ("submitted", 5, 0)


def test_the_reconciler_fails_a_job_whose_ingest_stopped(settings: Settings) -> None:
    from storage.broker.dispatch import reconcile

    db = get_database(settings)
    job_id, _ = repo.create_job(db, name="killed mid-upload")
    repo.insert_documents(db, job_id, [{"ext_id": "a", "line": 1, "text": "北京", "n_chars": 2, "status": "pending"}])
    reconcile(settings.replace(ingest_stale_seconds=3600), db=db, publish_batches=False)
    assert service.job_status(settings, job_id)["state"] == "submitted"  # still fresh: left alone
    reconcile(settings.replace(ingest_stale_seconds=0), db=db, publish_batches=False)
    status = service.job_status(settings, job_id)
    assert (status["state"], status["total"], status["cancelled"]) == ("failed", 1, 1)


def test_a_job_cancelled_while_storing_ends_cancelled(settings: Settings) -> None:
    db = get_database(settings)
    job_id, _ = repo.create_job(db)
    row = {"line": 1, "text": "北京", "n_chars": 2, "status": "pending"}
    repo.insert_documents(db, job_id, [{"ext_id": "a", **row}])
    repo.cancel_job(db, job_id)
    repo.insert_documents(db, job_id, [{"ext_id": "b", **row, "line": 2}])
    repo.seal_job(db, job_id)
    status = service.job_status(settings, job_id)
    assert (status["state"], status["cancelled"], status["pending"]) == ("cancelled", 2, 0)
