"""Completion webhooks against real local receivers (no HTTP mocks): at-least-once delivery with
backoff, one send per attempt under concurrent notifiers, HMAC signatures, timeouts, the give-up
window and the SSRF rules (storage/webhook/http.py, worker/notifier.py)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from storage.sql import queries, repo
from storage.sql.db import Database
from storage.core.domain import Outcome
from storage.broker.redis_server import RedisServer
from storage.sql.schema import document, notification
from storage.core.settings import Settings
from storage.sql.outbox import delivery_status
from storage.webhook.deliver import deliver_due, retry_after
from storage.webhook.http import WebhookRefused, WebhookUnresolvable, check_url, post, sign, verify
from tests.helpers.webhook_receivers import SECRET, Receiver, Silent
from worker.notifier import Notifier, notify_once


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def wsettings(settings: Settings) -> Settings:
    """The test database's settings with a secret and loopback receivers allowed."""
    return settings.replace(webhook_secret=SECRET, webhook_allow_private=True)


# --------------------------------------------------------------------------------------- helpers


def rejected_job(db: Database, url: str | None) -> str:
    """A job finished at seal: its one document was rejected at ingest (state ``failed``)."""
    job_id, _ = repo.create_job(db, name="hooked", notify_url=url)
    repo.insert_documents(db, job_id, [{"ext_id": "d0", "line": 1, "text": "", "n_chars": 0,
                                        "status": "failed", "reason": "too_large", "error": "too large"}])
    repo.seal_job(db, job_id)
    return job_id


def tagged_job(db: Database, url: str) -> str:
    """A job that ran: one document claimed and saved done (state ``succeeded``)."""
    job_id, _ = repo.create_job(db, name="hooked", notify_url=url)
    repo.insert_documents(db, job_id, [{"ext_id": "d0", "line": 1, "text": "北京很大", "n_chars": 4,
                                        "status": "pending"}])
    repo.seal_job(db, job_id)
    with db.read() as conn:
        ids = list(conn.execute(select(document.c.id).where(document.c.job_id == job_id)).scalars())
    (claimed,) = repo.claim(db, job_id=job_id, doc_ids=ids, lease_seconds=60, max_attempts=3)
    repo.save_outcomes(db, job_id=job_id, lease_token=claimed.lease_token,
                       outcomes=[Outcome(claimed.id, claimed.n_chars)])
    return job_id


def note(db: Database, job_id: str) -> dict[str, Any]:
    with db.read() as conn:
        rows = conn.execute(select(notification).where(notification.c.job_id == job_id)).mappings().all()
    assert len(rows) == 1
    return dict(rows[0])


# ------------------------------------------------------------------------------------ delivery


def test_retries_with_backoff_until_delivered_once(wsettings: Settings, db: Database) -> None:
    r = Receiver(statuses=(500, 500, 500))
    try:
        job_id = tagged_job(db, r.url)
        assert queries.get_job(db, job_id)["status"] == "succeeded"
        row = note(db, job_id)
        now = row["created_at"]
        expected_delays = [5.0, 10.0, 20.0]
        for attempt in range(1, 5):
            counts = deliver_due(wsettings, db, now=now)
            assert len(r.requests) == attempt
            row = note(db, job_id)
            assert row["attempts"] == attempt
            if attempt < 4:
                assert counts == {"delivered": 0, "failed": 1, "given_up": 0}
                assert (row["state"], row["last_error"]) == ("pending", "HTTP 500")
                delay = row["next_attempt_at"] - now
                base = expected_delays[attempt - 1]
                assert 0.8 * base - 1e-6 <= delay <= 1.2 * base + 1e-6
                # Not due yet: nothing is sent.
                assert deliver_due(wsettings, db, now=now + delay / 2) == {"delivered": 0, "failed": 0, "given_up": 0}
                assert len(r.requests) == attempt
                now = row["next_attempt_at"]
            else:
                assert counts == {"delivered": 1, "failed": 0, "given_up": 0}
        assert (row["state"], row["last_error"], row["delivered_at"]) == ("delivered", None, now)
        # Delivered: never sent again.
        assert deliver_due(wsettings, db, now=now + 10**6) == {"delivered": 0, "failed": 0, "given_up": 0}
        assert len(r.requests) == 4

        assert all(req["verified"] for req in r.requests)
        assert {req["headers"]["Shiti-Event-Id"] for req in r.requests} == {row["event_id"]}
        assert [req["headers"]["Shiti-Attempt"] for req in r.requests] == ["1", "2", "3", "4"]
        first = r.requests[0]
        assert first["path"] == "/hooks/shiti?tenant=7"
        assert first["headers"]["Host"] == f"127.0.0.1:{r.port}"
        assert first["headers"]["Content-Type"] == "application/json"
        assert first["headers"]["User-Agent"] == "shiti-webhook/1"
        assert first["body"] == row["body"].encode("utf-8")  # the stored bytes, on every attempt
        assert {req["body"] for req in r.requests} == {first["body"]}
        event = json.loads(first["body"])
        assert (event["event"], event["event_id"], event["job_id"], event["state"], event["done"]) == (
            "job.finished", row["event_id"], job_id, "succeeded", 1)

        status = delivery_status(db, job_id)
        assert status == {"url": r.url, "state": "delivered", "attempts": 4, "last_error": None,
                          "last_attempt_at": now, "delivered_at": now, "event_id": row["event_id"]}
        json.dumps(status)  # JSON-able as the job status needs it
    finally:
        r.close()


def test_hung_receiver_times_out_then_gives_up_leaving_the_job_alone(wsettings: Settings, db: Database) -> None:
    hung = Silent()
    try:
        s = wsettings.replace(webhook_timeout=0.5)
        job_id = rejected_job(db, hung.url)
        before = queries.get_job(db, job_id)
        assert before["status"] == "failed"
        created = note(db, job_id)["created_at"]

        started = time.monotonic()
        assert deliver_due(s, db, now=created) == {"delivered": 0, "failed": 1, "given_up": 0}
        assert 0.4 <= time.monotonic() - started < 5
        row = note(db, job_id)
        assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "timed out")
        assert hung.conns  # it did connect: the timeout is the receiver's silence

        # Past the give-up window: no further attempt, the row is given up, the job untouched.
        late = created + s.webhook_give_up_seconds + 1
        assert deliver_due(s, db, now=late) == {"delivered": 0, "failed": 0, "given_up": 1}
        row = note(db, job_id)
        assert (row["state"], row["attempts"]) == ("given_up", 1)
        assert "gave up" in row["last_error"] and "timed out" in row["last_error"]
        after = queries.get_job(db, job_id)
        assert (after["status"], after["finished_at"]) == (before["status"], before["finished_at"])
        assert delivery_status(db, job_id)["state"] == "given_up"  # type: ignore[index]
    finally:
        hung.close()


def test_a_receiver_trickling_its_answer_is_cut_at_the_timeout() -> None:
    slow = Silent(trickle=True)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            post(slow.url, b"{}", {"Content-Type": "application/json"}, timeout=1.0, allow_private=True)
        assert time.monotonic() - started < 4
    finally:
        slow.close()


def test_connection_refused_is_a_retryable_failure(wsettings: Settings, db: Database) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed below: nothing listens there any more
    job_id = rejected_job(db, f"http://127.0.0.1:{port}/")
    assert deliver_due(wsettings, db, now=note(db, job_id)["created_at"])["failed"] == 1
    row = note(db, job_id)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "connection refused")


def test_no_secret_sends_nothing_and_keeps_the_row(settings: Settings, db: Database, receiver: Receiver,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    s = settings.replace(webhook_allow_private=True, webhook_secret="")
    job_id = rejected_job(db, receiver.url)
    caplog.set_level(logging.WARNING, logger="shiti.webhooks")
    assert deliver_due(s, db, now=time.time() + 60) == {"delivered": 0, "failed": 0, "given_up": 0}
    assert receiver.requests == []
    warnings = [rec for rec in caplog.records if rec.name == "shiti.webhooks"]
    assert len(warnings) == 1 and "SHITI_WEBHOOK_SECRET" in warnings[0].getMessage()
    row = note(db, job_id)
    assert (row["state"], row["attempts"]) == ("pending", 0)
    assert delivery_status(db, job_id)["attempts"] == 0  # type: ignore[index]


def test_a_job_without_a_webhook_queues_nothing(wsettings: Settings, db: Database) -> None:
    job_id = rejected_job(db, None)
    assert queries.get_job(db, job_id)["status"] == "failed"
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(notification)).scalar() == 0
    assert delivery_status(db, job_id) is None
    assert deliver_due(wsettings, db) == {"delivered": 0, "failed": 0, "given_up": 0}


# ------------------------------------------------------------------------------------ concurrency


def test_an_attempt_in_flight_is_claimed(wsettings: Settings, db: Database) -> None:
    gate = threading.Event()
    r = Receiver(gate=gate)
    try:
        job_id = rejected_job(db, r.url)
        now = note(db, job_id)["created_at"] + 1
        results: list[dict[str, int]] = []
        first = threading.Thread(target=lambda: results.append(deliver_due(wsettings, db, now=now)))
        first.start()
        assert r.arrived.wait(10)
        # A second notifier while the first one's request is in flight: the row is claimed.
        assert deliver_due(wsettings, db, now=now) == {"delivered": 0, "failed": 0, "given_up": 0}
        gate.set()
        first.join(10)
        assert results == [{"delivered": 1, "failed": 0, "given_up": 0}]
        assert len(r.requests) == 1
        assert note(db, job_id)["attempts"] == 1
    finally:
        gate.set()
        r.close()


def test_concurrent_notifiers_send_each_event_once(wsettings: Settings, db: Database, receiver: Receiver) -> None:
    jobs = [rejected_job(db, receiver.url) for _ in range(6)]
    now = time.time() + 1
    barrier = threading.Barrier(3)
    results: list[dict[str, int]] = []

    def notifier() -> None:
        barrier.wait(10)
        results.append(deliver_due(wsettings, db, now=now))

    threads = [threading.Thread(target=notifier) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(c["delivered"] for c in results) == 6
    event_ids = [req["headers"]["Shiti-Event-Id"] for req in receiver.requests]
    assert sorted(event_ids) == sorted(note(db, j)["event_id"] for j in jobs)  # each exactly once
    assert all(note(db, j)["attempts"] == 1 for j in jobs)


def test_notifier_thread_delivers_under_the_redis_lock(wsettings: Settings, db: Database, receiver: Receiver,
                                                        redis_server: RedisServer) -> None:
    s = wsettings.replace(notify_interval=0.2, queue=f"t{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert notify_once(s, db=db, client=client) == {"delivered": 0, "failed": 0, "given_up": 0}
        assert notify_once(s, db=db, client=client) is None  # the interval's lock is taken
    finally:
        client.close()
    job_id = rejected_job(db, receiver.url)
    notifier = Notifier(s, redis_server.url)
    notifier.start()
    try:
        deadline = time.monotonic() + 15
        while note(db, job_id)["state"] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        notifier.stop()
        notifier.join(10)
    assert note(db, job_id)["state"] == "delivered"
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"]
    assert not notifier.is_alive()


# ------------------------------------------------------------------------------------------ SSRF


@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.20:8080/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://100.100.100.200/latest/meta-data", "non-public"),
])
def test_internal_addresses_are_refused_unless_allowed(url: str, kind: str) -> None:
    with pytest.raises(WebhookRefused) as info:
        check_url(url, allow_private=False)
    message = str(info.value)
    assert f"a {kind} address" in message and "SHITI_WEBHOOK_ALLOW_PRIVATE=1" in message
    assert check_url(url, allow_private=True) == url


def test_refusal_message_names_host_and_address() -> None:
    with pytest.raises(WebhookRefused, match=r"^webhook host 127\.0\.0\.1 is a loopback "
                                             r"address; set SHITI_WEBHOOK_ALLOW_PRIVATE=1 to allow it$"):
        check_url("http://127.0.0.1:9000/x", allow_private=False)


def test_refusal_of_a_name_does_not_say_what_it_resolves_to() -> None:
    # "localhost" resolves to 127.0.0.1 (and ::1): the kind is said, the internal address is not.
    with pytest.raises(WebhookRefused) as info:
        check_url("http://localhost:9000/x", allow_private=False)
    message = str(info.value)
    assert message.startswith("webhook host localhost resolves to a loopback address;")
    assert "127.0.0.1" not in message and "::1" not in message


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "gopher://example.com/",
                                 "example.com/hook", "http:///path", "https://"])
def test_only_http_urls_with_a_host(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(WebhookRefused, match="webhook URL must be http"):
            check_url(url, allow_private=allow)


@pytest.mark.parametrize("url", ["http://user:pw@93.184.216.34/", "http://93.184.216.34:99999/",
                                 "http://93.184.216.34/a b", "http://93.184.216.34/\r\nX-Evil: 1"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_url(url, allow_private=True)


def test_public_addresses_pass_and_unresolvable_hosts_are_refused() -> None:
    assert check_url("https://93.184.216.34/hooks", allow_private=False) == "https://93.184.216.34/hooks"
    assert check_url("http://[2606:2800:220:1:248:1893:25c8:1946]/", allow_private=False)
    with pytest.raises(WebhookUnresolvable, match="does not resolve"):
        check_url("https://no-such-host.invalid/hook", allow_private=False)


def test_a_url_refused_at_delivery_is_given_up(settings: Settings, db: Database, receiver: Receiver) -> None:
    # The URL was accepted when private addresses were allowed; delivery re-checks it.
    s = settings.replace(webhook_secret=SECRET, webhook_allow_private=False)
    job_id = rejected_job(db, receiver.url)
    assert deliver_due(s, db, now=time.time() + 1) == {"delivered": 0, "failed": 0, "given_up": 1}
    assert receiver.requests == []
    row = note(db, job_id)
    assert (row["state"], row["attempts"]) == ("given_up", 1)
    assert "loopback" in row["last_error"]


# ------------------------------------------------------------------------------------ signatures


def test_sign_and_verify_round_trip() -> None:
    body = json.dumps({"event": "job.finished", "job_id": "abc", "name": "北京"}).encode()
    ts = int(time.time())
    signature = sign(SECRET, ts, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, str(ts), signature, body)
    assert not verify(SECRET, str(ts), signature, body + b" ")  # tampered body
    assert not verify("another-secret", str(ts), signature, body)  # wrong key
    assert not verify(SECRET, str(ts + 1), signature, body)  # timestamp is signed
    assert not verify(SECRET, str(ts), signature, body, now=ts + 301)  # too old: a replay
    assert verify(SECRET, str(ts), signature, body, now=ts + 299)
    assert not verify(SECRET, str(ts), signature, body, now=ts - 301)  # from the future
    for bad_ts, bad_sig in [(None, signature), (str(ts), None), ("soon", signature), (str(ts), "v1=00"),
                            (str(ts), "v1=é" + signature[4:])]:
        assert not verify(SECRET, bad_ts, bad_sig, body)
    assert not verify("", str(ts), sign("", ts, body), body)  # no secret: nothing verifies


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    for attempts, base in [(1, 5), (2, 10), (3, 20), (4, 40), (7, 320)]:
        for _ in range(50):
            assert 0.8 * base <= retry_after(attempts, cap=600) <= 1.2 * base
    assert all(retry_after(n, cap=600) <= 600 for n in (8, 9, 50, 10**6))
    assert retry_after(10**6, cap=600) >= 480


def test_the_documented_receiver_snippet_agrees_with_verify() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    (snippet,) = [block for block in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "def verify_shiti" in block]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 - our own docs, to test them
    verify_shiti = namespace["verify_shiti"]
    body = b'{"event": "job.finished", "event_id": "e1"}'
    ts = int(time.time())
    good = sign(SECRET, ts, body)
    cases = [(SECRET, str(ts), good, body), (SECRET, str(ts), good, body + b"x"), ("other", str(ts), good, body),
             (SECRET, str(ts - 400), sign(SECRET, ts - 400, body), body), (SECRET, None, good, body),
             (SECRET, "x", good, body), (SECRET, f" {ts} ", f" {good} ", body), ("", str(ts), sign("", ts, body), body)]
    for case in cases:
        assert verify_shiti(*case) == verify(*case), case
    assert verify_shiti(SECRET, str(ts), good, body)


# ------------------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path, list[str | None]]]:
    """A receiver speaking HTTPS with a self-signed certificate for ``localhost``; yields it, the
    certificate (a CA file that trusts it) and the SNI names its clients sent."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True, timeout=60)
    names: list[str | None] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    ctx.sni_callback = remember_sni
    r = Receiver()
    r.server.socket = ctx.wrap_socket(r.server.socket, server_side=True)
    yield r, cert, names
    r.close()


def test_https_connects_to_the_checked_address_and_verifies_the_url_host(
        tls_receiver: tuple[Receiver, Path, list[str | None]], monkeypatch: pytest.MonkeyPatch) -> None:
    r, cert, names = tls_receiver
    url = f"https://localhost:{r.port}/hook"
    body = b'{"event": "job.finished"}'
    headers = {"Content-Type": "application/json"}
    # The system CA store does not know the certificate: refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        post(url, body, headers, timeout=5, allow_private=True)
    # Trusted (SSL_CERT_FILE, as an operator with a private CA would do): delivered, with the
    # URL's host name as SNI although the socket went to the checked 127.0.0.1.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert post(url, body, headers, timeout=5, allow_private=True) == 200
    assert names[-1] == "localhost"
    assert r.requests[-1]["body"] == body and r.requests[-1]["headers"]["Host"] == f"localhost:{r.port}"
    # The same server by address: the certificate does not name 127.0.0.1, so verification fails.
    with pytest.raises(ssl.SSLCertVerificationError):
        post(f"https://127.0.0.1:{r.port}/hook", body, headers, timeout=5, allow_private=True)


def test_a_certificate_failure_is_recorded(wsettings: Settings, db: Database,
                                           tls_receiver: tuple[Receiver, Path, list[str | None]]) -> None:
    r, _, _ = tls_receiver
    job_id = rejected_job(db, f"https://localhost:{r.port}/hook")
    assert deliver_due(wsettings, db, now=time.time() + 1)["failed"] == 1
    row = note(db, job_id)
    assert row["state"] == "pending" and row["last_error"].startswith("TLS certificate: ")
    assert r.requests == []
