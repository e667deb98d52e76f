"""API keys: every route of the OpenAPI document has an access decision, and each decision holds
(no key -> 401, a scope too small -> 403, another key's job -> 404, the right key -> 2xx); keys
are stored hashed, revoked at once, malformed headers are 401; per-key limits answer 429; every
response carries the security headers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from producer.api.app import create_app
from producer.dictionaries import create_dictionary
from producer.service import submit_corpus
from storage.sql import keys as api_keys
from storage.sql import repo
from storage.sql.db import get_database
from storage.sql.schema import api_key
from storage.core.settings import Settings
from tests.api.conftest import assert_error

# (method, path) -> (scope needed, whether the route acts on one job). A route added without an
# entry here fails test_every_route_has_a_decision.
DECISIONS: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "/healthz"): ("public", False),
    ("GET", "/whoami"): ("read", False),
    ("GET", "/states"): ("read", False),
    ("GET", "/metrics"): ("admin", False),  # deployment-wide counts: not for a read or submit key
    ("GET", "/jobs"): ("read", False),
    ("POST", "/jobs"): ("submit", False),
    ("POST", "/extract"): ("submit", False),
    ("GET", "/jobs/{job_id}"): ("read", True),
    ("GET", "/jobs/{job_id}/throughput"): ("read", True),
    ("GET", "/jobs/{job_id}/entities"): ("read", True),
    ("GET", "/jobs/{job_id}/entities/top"): ("read", True),
    ("GET", "/jobs/{job_id}/groups"): ("read", True),
    ("GET", "/jobs/{job_id}/cooccur"): ("read", True),
    ("GET", "/jobs/{job_id}/mentions"): ("read", True),
    ("GET", "/jobs/{job_id}/documents/{doc_id}"): ("read", True),
    ("GET", "/jobs/{job_id}/export"): ("read", True),
    ("POST", "/jobs/{job_id}/cancel"): ("submit", True),
    ("DELETE", "/jobs/{job_id}"): ("submit", True),
    ("GET", "/jobs/{job_id}/failures"): ("read", True),
    ("POST", "/jobs/{job_id}/retry"): ("submit", True),
    ("POST", "/jobs/{job_id}/pause"): ("submit", True),
    ("POST", "/jobs/{job_id}/resume"): ("submit", True),
    ("POST", "/jobs/{job_id}/rerun"): ("submit", True),
    ("GET", "/jobs/{job_id}/diff/{other_id}"): ("read", True),
    ("GET", "/jobs/{job_id}/sample"): ("read", True),
    ("GET", "/jobs/{job_id}/label-config"): ("read", True),
    ("POST", "/jobs/{job_id}/corrections"): ("submit", True),
    ("GET", "/models"): ("read", False),
    # Dictionaries are owned like jobs: another key's is 404
    ("GET", "/dicts"): ("submit", False),
    ("POST", "/dicts"): ("submit", False),
    ("GET", "/dicts/{name}"): ("submit", True),
}
BAD_TEXT = "\ud800"  # a lone surrogate: the document fails at ingest, so the job is final at once


@pytest.fixture
def keyed(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    db = get_database(settings)
    found = {name: api_keys.create_key(db, name=name, scope=scope)
             for name, scope in (("reader", "read"), ("bob", "submit"), ("carol", "submit"), ("root", "admin"))}
    with TestClient(create_app(settings)) as client:
        yield client, found


def _hdr(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _call(client: TestClient, method: str, path: str, settings: Settings, owner: str,
          headers: dict[str, str]):  # type: ignore[no-untyped-def]
    """Call one route for a fresh job owned by ``owner`` (retry gets a failed job, cancel an open one)."""
    text = BAD_TEXT if path.endswith("/retry") else "张伟在北京。"
    if path.startswith("/dicts"):
        name = f"d{uuid.uuid4().hex[:8]}"
        if method == "POST":
            return client.post("/dicts", params={"name": name}, content="北京\tLOC\n".encode(),
                               headers={**headers, "Content-Type": "text/tab-separated-values"})
        create_dictionary(settings, name, "上海\tLOC\n", owner=owner)
        return client.get(path.replace("{name}", name), headers=headers)
    if path.endswith(("/cancel", "/pause", "/resume")):
        # A job still being stored (not sealed) stays open however fast the background worker tags
        # its document: a submitted one could be finished before the cancel arrives (409).
        db = get_database(settings)
        job = repo.create_job(db, owner=owner)[0]
        repo.insert_documents(db, job, [{"ext_id": "d1", "line": 1, "text": text, "n_chars": len(text),
                                         "status": "pending"}])
    else:
        job = submit_corpus(settings, [{"id": "d1", "text": text}], owner=owner).job_id
    url = path.replace("{job_id}", job).replace("{doc_id}", "d1").replace("{other_id}", job)
    if path.endswith("/mentions"):
        from producer.service import wait_job

        wait_job(settings, job, timeout=30, poll=0.05)  # 北京 is mentioned once the job is tagged
        return client.get(url, params={"name": "北京"}, headers=headers)
    if method == "GET":
        return client.get(url, headers=headers)
    if method == "DELETE":
        from producer.service import wait_job

        wait_job(settings, job, timeout=30, poll=0.05)  # only a finished job is purged
        return client.delete(url, headers=headers)
    if path == "/jobs":
        return client.post(url, json=[{"id": "a", "text": "李明在上海。"}], headers=headers)
    if path == "/extract":
        return client.post(url, json={"text": "李明在上海。", "timeout": 20}, headers=headers)
    if path.endswith("/corrections"):
        return client.post(url, json=[{"data": {"text": text, "doc_id": "d1"}, "annotations": [{"result": []}]}],
                           headers=headers)
    return client.post(url, headers=headers)


def test_every_route_has_a_decision(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        spec = client.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(DECISIONS), f"routes without a decision: {routes - set(DECISIONS)}; " \
                                     f"decisions without a route: {set(DECISIONS) - routes}"


@pytest.mark.parametrize("route", sorted(DECISIONS), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_decision_holds(route: tuple[str, str], settings: Settings, keyed, background_worker: None) -> None:  # type: ignore[no-untyped-def]
    client, found = keyed
    method, path = route
    scope, per_job = DECISIONS[route]
    # No key: 401 with a challenge (except the public route)
    got = _call(client, method, path, settings, "bob", {})
    if scope == "public":
        assert got.status_code == 200
        return
    assert_error(got, 401, "unauthorized")
    assert got.headers["WWW-Authenticate"].startswith("Bearer")
    # A scope too small: 403
    if scope in ("submit", "admin"):
        assert_error(_call(client, method, path, settings, "reader", _hdr(found["reader"])), 403, "forbidden")
    if scope == "admin":
        assert_error(_call(client, method, path, settings, "bob", _hdr(found["bob"])), 403, "forbidden")
    # Another key's job: 404, as for an id that does not exist
    if per_job:
        assert_error(_call(client, method, path, settings, "bob", _hdr(found["carol"])), 404, "not_found")
    # The right key on its own job, and an admin key on anyone's: 2xx
    owner, key = {"read": ("reader", found["reader"]), "submit": ("bob", found["bob"]),
                  "admin": ("root", found["root"])}[scope]
    assert 200 <= _call(client, method, path, settings, owner, _hdr(key)).status_code < 300
    assert 200 <= _call(client, method, path, settings, "carol", _hdr(found["root"])).status_code < 300


def test_listing_shows_only_the_keys_own_jobs_and_admin_sees_all(settings: Settings, keyed) -> None:  # type: ignore[no-untyped-def]
    client, found = keyed
    mine = client.post("/jobs", json=[{"id": "a", "text": "北京"}], headers=_hdr(found["bob"])).json()["job_id"]
    theirs = client.post("/jobs", json=[{"id": "a", "text": "北京"}], headers=_hdr(found["carol"])).json()["job_id"]
    bob_sees = {j["job_id"] for j in client.get("/jobs", headers=_hdr(found["bob"])).json()["items"]}
    root_sees = {j["job_id"] for j in client.get("/jobs", headers=_hdr(found["root"])).json()["items"]}
    assert mine in bob_sees and theirs not in bob_sees
    assert {mine, theirs} <= root_sees
    # The same client token from two keys is two jobs
    a = client.post("/jobs", json=[{"id": "a", "text": "北京"}], params={"client_token": "t1"}, headers=_hdr(found["bob"]))
    b = client.post("/jobs", json=[{"id": "a", "text": "北京"}], params={"client_token": "t1"}, headers=_hdr(found["carol"]))
    assert a.json()["job_id"] != b.json()["job_id"] and b.status_code == 202


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwdw==", "bearer x y z", "Bearer \u4e2d\u6587key",
                                    "Token abc", "Bearer " + "a" * 500])
def test_a_malformed_authorization_header_is_401_never_500(header: str, keyed) -> None:  # type: ignore[no-untyped-def]
    client, _ = keyed
    assert_error(client.get("/jobs", headers={"Authorization": header.encode("utf-8")}),
                 401, "unauthorized")


def test_keys_are_stored_hashed_and_a_revoked_key_is_refused_at_once(settings: Settings, keyed) -> None:  # type: ignore[no-untyped-def]
    client, found = keyed
    db = get_database(settings)
    with db.read() as conn:
        stored = [tuple(r) for r in conn.execute(select(api_key))]
    for key in found.values():
        assert all(key not in str(row) for row in stored)
    if settings.database_url == "":
        raw = Path(settings.sqlalchemy_url.removeprefix("sqlite:///")).read_bytes()
        assert all(key.encode() not in raw for key in found.values())
    assert client.get("/whoami", headers=_hdr(found["bob"])).json() == {"open": False, "name": "bob", "scope": "submit"}
    api_keys.revoke_key(db, "bob")
    assert_error(client.get("/whoami", headers=_hdr(found["bob"])), 401, "unauthorized")


def test_over_the_per_key_limit_submit_is_429_and_nothing_is_stored(settings: Settings) -> None:
    limited = settings.replace(max_queued_per_key=3)
    key = api_keys.create_key(get_database(limited), name="bob", scope="submit")
    with TestClient(create_app(limited)) as client:
        ok = client.post("/jobs", json=[{"id": str(i), "text": "北京"} for i in range(2)], headers=_hdr(key))
        assert ok.status_code == 202
        over = client.post("/jobs", json=[{"id": str(i), "text": "北京"} for i in range(2)], headers=_hdr(key))
        assert_error(over, 429, "too_many_requests")
        assert int(over.headers["Retry-After"]) > 0
        assert len(client.get("/jobs", headers=_hdr(key)).json()["items"]) == 1


def test_metrics_can_be_made_public(settings: Settings, keyed) -> None:  # type: ignore[no-untyped-def]
    client, _ = keyed
    assert_error(client.get("/metrics"), 401, "unauthorized")
    with TestClient(create_app(settings.replace(metrics_public=True))) as open_metrics:
        assert open_metrics.get("/metrics").status_code == 200


def test_every_response_carries_the_security_headers(keyed) -> None:  # type: ignore[no-untyped-def]
    client, _ = keyed
    for path in ("/", "/healthz", "/jobs", "/static/js/main.js", "/docs"):
        got = client.get(path)
        csp = got.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert got.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unknown_scope_and_a_taken_name_are_refused(settings: Settings) -> None:
    from storage.core.errors import PermanentError

    db = get_database(settings)
    with pytest.raises(PermanentError, match="use one of read, submit, admin"):
        api_keys.create_key(db, name="x", scope="root")
    api_keys.create_key(db, name="x", scope="read")
    with pytest.raises(PermanentError, match="exists already"):
        api_keys.create_key(db, name="x", scope="admin")


def test_serve_refuses_a_public_address_without_a_key_and_the_cli_lists_scopes(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SHITI_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(root)}
    env.pop("SHITI_ADMIN_KEY", None)
    shiti = [sys.executable, "-m", "producer.cli.main"]
    # Given no key: serving 0.0.0.0 is refused with exit 78 and the way out
    done = subprocess.run([*shiti, "serve", "--host", "0.0.0.0", "--port", "0"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr[-2000:]
    assert "no API key exists and 0.0.0.0 is not a loopback address" in done.stderr
    assert "--insecure" in done.stderr and "shiti keys create" in done.stderr
    # An unknown scope is a one-line CLI error naming the scopes
    bad = subprocess.run([*shiti, "keys", "create", "--name", "x", "--scope", "owner"], env=env, cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "use one of read, submit, admin" in bad.stderr


def test_the_admin_key_setting_becomes_the_admin_key(settings: Settings) -> None:
    with TestClient(create_app(settings.replace(admin_key="shiti_from-the-environment-0123456789"))) as client:
        got = client.get("/whoami", headers=_hdr("shiti_from-the-environment-0123456789"))
        assert got.json() == {"open": False, "name": "admin", "scope": "admin"}
        assert_error(client.get("/jobs"), 401, "unauthorized")
    assert "from-the-environment" not in repr(settings.replace(admin_key="shiti_from-the-environment-0123456789"))


def test_revoking_the_last_key_locks_the_api_instead_of_opening_it(settings: Settings) -> None:
    db = get_database(settings)
    key = api_keys.create_key(db, name="only", scope="admin")
    with TestClient(create_app(settings)) as client:
        assert client.get("/jobs", headers=_hdr(key)).status_code == 200
        api_keys.revoke_key(db, "only")
        assert_error(client.get("/jobs"), 401, "unauthorized")
        assert_error(client.get("/jobs", headers=_hdr(key)), 401, "unauthorized")
