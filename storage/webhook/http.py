"""Completion webhooks, the HTTP half: URL and address checks (SSRF), HMAC-SHA256 signing, one
POST to the checked address under a whole-attempt deadline.

Request: ``POST <url>`` with the stored body (UTF-8 JSON, ``storage.sql.repo.event_body``) and
- ``Content-Type: application/json``
- ``User-Agent: shiti-webhook/1``
- ``Shiti-Event-Id: <32 hex>``: the idempotency key. It is the same on every attempt of one
  event; a receiver dedupes on it (delivery is at least once: a 2xx that got lost on its way
  back means another attempt).
- ``Shiti-Timestamp: <unix seconds>``: when this attempt was signed (fresh per attempt).
- ``Shiti-Signature: v1=<hex>``: HMAC-SHA256 with ``SHITI_WEBHOOK_SECRET`` over
  ``f"{timestamp}.".encode() + body`` (:func:`sign`; receivers check it with :func:`verify`).
- ``Shiti-Attempt: <n>``: 1 for the first attempt.

SSRF: a URL must be http(s) with a host, and every address its host resolves to must be public
(no loopback, private, link-local, multicast, reserved, unspecified, shared/CGNAT address, also
when wrapped in IPv6) unless ``webhook_allow_private``. It is checked at submit time and again
at every attempt, and the connection goes to the address that was checked (no second DNS
lookup, so a host that re-resolves to an internal address between check and connect gains
nothing); TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from storage.core.errors import PermanentError

__all__ = [
    "USER_AGENT",
    "WebhookRefused",
    "WebhookUnresolvable",
    "check_url",
    "headers_for",
    "redact_url",
    "post",
    "reason",
    "sign",
    "verify",
]

log = logging.getLogger("shiti.webhooks")

USER_AGENT = "shiti-webhook/1"
MAX_ERROR = 300  # characters of an attempt's error kept


class WebhookRefused(PermanentError):
    """A webhook URL shiti will not call (scheme, host or address), with the reason."""


class WebhookUnresolvable(WebhookRefused):
    """The webhook host does not resolve. Refused at submit; at delivery time a DNS failure may
    be passing, so it is retried like a connection error instead of giving up."""


# ------------------------------------------------------------------------------------------ URLs


@dataclass(frozen=True)
class _Target:
    """A checked URL: where to connect (the checked addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[tuple[int, tuple[Any, ...]], ...]  # (family, sockaddr) from getaddrinfo


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        return True
    except ValueError:
        return False


def _refused_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``ip`` an address webhooks must not reach, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one. (Python < 3.13
        # does not look through ::ffff:a.b.c.d in is_loopback / is_private.)
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            inner = _refused_kind(embedded)
            if inner is not None:
                return inner
    # Order matters: 127.0.0.1 is also "private" in ipaddress, but "loopback" is the clear word.
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),  # 169.254.169.254: the cloud metadata service
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for kind, hit in checks:
        if hit:
            return kind
    if not ip.is_global:
        # e.g. 100.64.0.0/10 (carrier-grade NAT; Alibaba Cloud's metadata is 100.100.100.200).
        return "non-public"
    return None


def _target(url: str, *, allow_private: bool) -> _Target:
    """Parse, resolve and check ``url``; raises :class:`WebhookRefused` with the reason."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        # http.client would refuse such a request line anyway; say so at submit time.
        raise WebhookRefused(f"webhook URL must not contain spaces or control characters: {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"webhook URL must be http(s) with a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        # They would not be sent (and would be shown in the job status): the signature is what
        # authenticates shiti to the receiver.
        raise WebhookRefused("webhook URL must not contain credentials (user:password@); "
                             "receivers authenticate shiti by the Shiti-Signature header")
    host = parts.hostname
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WebhookRefused(f"webhook URL has an invalid port: {url!r}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUnresolvable(f"webhook host {host} does not resolve ({exc})") from None
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
        kind = _refused_kind(ip)
        # ANY refused address refuses the URL: a host listing a public and an internal address
        # could otherwise steer some attempts inside.
        if kind is not None and not allow_private:
            # A literal address is the caller's own; what an internal name resolves to is not
            # theirs to learn (it maps the deployment's network).
            where = f"is a {kind} address" if _is_literal(host) else f"resolves to a {kind} address"
            raise WebhookRefused(f"webhook host {host} {where}; set SHITI_WEBHOOK_ALLOW_PRIVATE=1 to allow it")
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise WebhookUnresolvable(f"webhook host {host} has no IPv4 or IPv6 address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port, path, tuple(addresses))


def check_url(url: str, *, allow_private: bool) -> str:
    """Check a webhook URL: http(s), a host that resolves, and (unless ``allow_private``) only
    public addresses behind it. Called at submit time and before every delivery attempt.

    Returns:
        ``url`` unchanged.

    Raises:
        WebhookRefused: with a message naming the problem (and the setting that allows private
            addresses); WebhookUnresolvable (a subclass) when the host does not resolve.
    """
    _target(url, allow_private=allow_private)
    return url


# ------------------------------------------------------------------------------------ signatures


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Shiti-Signature`` value: ``"v1=" + hex(HMAC-SHA256(secret, f"{timestamp}." + body))``.

    The timestamp is inside the MAC so a captured request cannot be replayed later with a new one.
    """
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp_header: str | None, signature_header: str | None, body: bytes, *,
           tolerance: float = 300, now: float | None = None) -> bool:
    """Check a received webhook (the receiver's side; docs/webhooks.md has the same code).

    Args:
        timestamp_header, signature_header: the ``Shiti-Timestamp`` and ``Shiti-Signature`` headers.
        body: the raw request body, byte for byte (not re-serialised JSON).
        tolerance: seconds the timestamp may differ from ``now`` (replay window, clock skew).

    Returns:
        True when the signature matches (constant-time comparison) and the timestamp is recent.
    """
    if not secret or not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature_header.strip().encode("utf-8", "replace"))


def headers_for(secret: str, *, event_id: str, attempt: int, body: bytes,
                timestamp: int | None = None) -> dict[str, str]:
    """The headers of one delivery attempt, signed now (or at ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Shiti-Event-Id": event_id,
        "Shiti-Timestamp": str(ts),
        "Shiti-Signature": sign(secret, ts, body),
        "Shiti-Attempt": str(attempt),
        "Connection": "close",  # one request per connection: nothing pooled across checks
    }


# -------------------------------------------------------------------------------------- sending


def _connect(addresses: tuple[tuple[int, tuple[Any, ...]], ...], deadline: float) -> socket.socket:
    """A TCP connection to the first checked address that answers before ``deadline``."""
    error: OSError = TimeoutError("timed out")
    for family, sockaddr in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(left)
            sock.connect(sockaddr)  # a literal sockaddr: no name lookup happens here
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a checked address; ``host`` (the URL's) only names it in the Host header."""

    def __init__(self, target: _Target, timeout: float, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._target = target
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self._target.addresses, self._deadline)
        self.sock.settimeout(self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; SNI and certificate verification use the URL's host name."""

    def __init__(self, target: _Target, timeout: float, deadline: float) -> None:
        self._tls = ssl.create_default_context()  # CERT_REQUIRED + check_hostname
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._target = target
        self._deadline = deadline

    def connect(self) -> None:
        raw = _connect(self._target.addresses, self._deadline)
        raw.settimeout(self.timeout)
        try:
            tls = self._tls.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        except BaseException:
            raw.close()
            raise
        # Handshake after assigning: the watchdog can then cut a receiver that stalls the handshake.
        self.sock = tls
        tls.do_handshake()


class _Watchdog:
    """Ends an attempt at its deadline: a socket timeout bounds each read, not a receiver that
    trickles its answer a byte at a time."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn = conn
        self.expired = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.expired = True
        sock = self.conn.sock
        if sock is not None:
            try:
                # The plain socket's shutdown, also for TLS (SSLSocket.shutdown would drop its SSL
                # state under the reading thread): the blocked read wakes with EOF or an error.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, allow_private: bool) -> int:
    """POST ``body`` to ``url`` once and return the HTTP status (redirects are not followed).

    The URL is checked (:func:`check_url` rules) and the connection goes to the address that
    was checked, so DNS cannot answer differently between check and connect. The whole attempt
    (connect, TLS, request, status line and headers) gets ``timeout`` seconds.

    Raises:
        WebhookRefused: the URL or an address behind it is refused (SSRF rules).
        WebhookUnresolvable: the host does not resolve (now).
        TimeoutError: the attempt took more than ``timeout`` seconds.
        OSError, ssl.SSLError, http.client.HTTPException: the connection or the answer failed.
    """
    target = _target(url, allow_private=allow_private)
    deadline = time.monotonic() + timeout
    conn: http.client.HTTPConnection = (_PinnedHTTPS(target, timeout, deadline) if target.scheme == "https"
                                        else _PinnedHTTP(target, timeout, deadline))
    watchdog = _Watchdog(conn, timeout)
    watchdog.timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=dict(headers))
        response = conn.getresponse()
        if watchdog.expired:
            # The cut can look like a clean end of the headers (EOF): a status read after the
            # deadline is not an answer.
            raise TimeoutError(f"timed out after {timeout:g} s")
        return int(response.status)  # the body is not read: only the status matters
    except Exception as exc:
        if watchdog.expired:  # whatever the cut socket raised, the attempt ran out of time
            raise TimeoutError(f"timed out after {timeout:g} s") from exc
        raise
    finally:
        watchdog.timer.cancel()
        conn.close()


def reason(exc: BaseException) -> str:
    """A short last_error for a failed attempt."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate: {exc.verify_message or exc}"
    elif isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(exc, http.client.RemoteDisconnected):
        text = "connection closed without a response"
    elif isinstance(exc, http.client.HTTPException):
        text = f"bad HTTP response ({type(exc).__name__}: {exc})"
    elif isinstance(exc, WebhookRefused):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR]


def redact_url(url: str) -> str:
    """``url`` as status shows it to readers: scheme and host only, since receivers often carry a
    token in the path or query (``https://hooks.example/…``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{rest}"
