"""Every error the API answers is the JSON envelope with a stable code and a useful status."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producer.api.app import create_app
from storage.sql.db import dispose_all
from tests.api.conftest import assert_error, make_settings, submit

UNKNOWN = "0123456789abcdef"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/jobs/{UNKNOWN}"),
    ("POST", f"/jobs/{UNKNOWN}/cancel"),
    ("POST", f"/jobs/{UNKNOWN}/retry"),
    ("GET", f"/jobs/{UNKNOWN}/entities"),
    ("GET", f"/jobs/{UNKNOWN}/entities/top"),
    ("GET", f"/jobs/{UNKNOWN}/documents/x"),
    ("GET", f"/jobs/{UNKNOWN}/export"),
    ("GET", f"/jobs/{UNKNOWN}/throughput"),
    ("GET", "/no/such/route"),
])
def test_unknown_ids_are_404(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 404, "not_found")


def test_unknown_document_of_a_known_job_is_404(client: TestClient) -> None:
    job_id = submit(client, [{"id": "a", "text": "北京"}])
    error = assert_error(client.get(f"/jobs/{job_id}/documents/nope"), 404, "not_found")
    assert "nope" in error["message"]


@pytest.mark.parametrize(("path", "params", "needle"), [
    ("/jobs", {"state": "sleeping"}, "sleeping"),
    ("/jobs", {"limit": 0}, "limit"),
    ("/jobs", {"cursor": "abc"}, "cursor"),
])
def test_bad_query_parameters_are_422_with_reason(client: TestClient, path: str, params: dict, needle: str) -> None:
    error = assert_error(client.get(path, params=params), 422, "invalid_input")
    assert needle in error["message"]


def test_bad_entity_cursor_is_422(client: TestClient) -> None:
    job_id = submit(client, [{"id": "a", "text": "北京"}])
    assert_error(client.get(f"/jobs/{job_id}/entities", params={"cursor": "x"}), 422, "invalid_input")


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "JSON"),
    ({"json": {"documents": "nope"}}, "list"),
    ({"json": {"documents": [], "client_token": 5}}, "client_token"),
    ({"files": {"wrong": ("c.txt", b"x")}}, "file"),
    ({"files": {"file": ("c.txt", b"x")}, "data": {"format": "docx"}}, "docx"),
    ({"files": {"file": ("c.csv", b"id,body\n1,x\n")}}, "text"),
])
def test_bad_submissions_are_422_with_reason(client: TestClient, kwargs: dict, needle: str) -> None:
    error = assert_error(client.post("/jobs", **kwargs), 422, "invalid_input")
    assert needle in error["message"]


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    response = client.post("/jobs", content=b"hello", headers={"content-type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


def test_extract_without_text_is_422(client: TestClient) -> None:
    error = assert_error(client.post("/extract", json={"txt": "北京"}), 422, "invalid_input")
    assert "text" in error["message"]


def test_oversize_uploads_are_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_bytes=2000)
    try:
        with TestClient(create_app(settings)) as client:
            big = ("北京\n" * 1000).encode()
            # Declared length over the limit: refused before the body is read.
            assert_error(client.post("/jobs", files={"file": ("c.txt", big)}), 413, "payload_too_large")

            # Streamed without a length (chunked): refused once the count crosses the limit.
            def chunks():  # type: ignore[no-untyped-def]
                for _ in range(10):
                    yield b'[{"id": "1", "text": "' + b"x" * 500 + b'"}]'

            response = client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
            assert_error(response, 413, "payload_too_large")
            # Under the limit is fine.
            assert client.post("/jobs", files={"file": ("c.txt", "北京\n".encode())}).status_code == 202
            assert client.get("/jobs").json()["items"][0]["total"] == 1
    finally:
        dispose_all()


def test_extract_times_out_with_504_and_the_job_id(client: TestClient) -> None:
    # No worker is running, so the one-document job cannot finish.
    response = client.post("/extract", json={"text": "张伟在北京。", "timeout": 1})
    error = assert_error(response, 504, "timeout")
    assert client.get(f"/jobs/{error['job_id']}").json()["total"] == 1


def test_wrong_method_is_405(client: TestClient) -> None:
    assert_error(client.delete("/jobs"), 405, "method_not_allowed")


def test_a_locked_database_answers_503_with_retry_after(tmp_path) -> None:
    import sqlite3

    from fastapi.testclient import TestClient

    from producer.api.app import create_app
    from storage.sql.db import dispose_all
    from tests.api.conftest import make_settings

    # Given an API on SQLite that waits at most 200 ms for a lock
    settings = make_settings(tmp_path, busy_timeout_ms=200)
    with TestClient(create_app(settings)) as client:
        docs = [{"id": "a", "text": "李明在北京。"}]
        assert client.get("/jobs").status_code == 200  # the schema exists
        # When another process holds the database's write lock
        lock = sqlite3.connect(settings.sqlalchemy_url.removeprefix("sqlite:///"))
        lock.execute("BEGIN EXCLUSIVE")
        try:
            got = client.post("/jobs", json=docs)
            # Then a submit is answered "unavailable, retry" instead of a 500, and nothing is stored
            assert got.status_code == 503 and got.headers["Retry-After"] == "5"
            assert got.json()["error"]["code"] == "unavailable"
        finally:
            lock.rollback()
            lock.close()
        assert client.get("/jobs").json()["items"] == []
        # And once the lock is gone the same request succeeds
        assert client.post("/jobs", json=docs).status_code == 202
    dispose_all()
