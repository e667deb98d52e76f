"""Who may call the REST API: Bearer API keys with scopes, jobs visible to their owner, security headers.

Once any key exists, every route but ``/healthz`` needs ``Authorization: Bearer KEY`` (``/metrics``
too, unless ``SHITI_METRICS_PUBLIC``): none, a malformed header or an unknown key -> 401 with
``WWW-Authenticate``; a scope that does not allow the route -> 403. ``read`` and ``submit`` keys
see and act on their own jobs only (another's job is a 404, so its existence does not leak);
``admin`` sees all. With no key at all the API is open -- ``shiti serve`` allows that only on a
loopback address (or with ``--insecure``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html

from producer.api.errors import ApiError
from producer.service import Refused
from storage.sql import keys as api_keys
from storage.sql import queries
from storage.sql.db import get_database
from storage.core.errors import NotFound
from storage.core.settings import Settings

# The scheme is case-insensitive (RFC 7235 §2.1); the key itself is not.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9._~+/=-]{8,200})$")
# Keys created while an open API runs take effect within this many seconds.
OPEN_RECHECK_S = 2.0


@dataclass(frozen=True)
class Caller:
    """The identity of a request: a key, or None when the API is open (no key exists)."""

    key: api_keys.KeyInfo | None

    @property
    def owner(self) -> str | None:
        """The owner recorded on jobs this caller submits."""
        return self.key.name if self.key else None

    @property
    def sees_all(self) -> bool:
        return self.key is None or self.key.scope == "admin"


class Auth:
    """Per-app authentication state: whether keys are required, and the checks routes use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open_until = 0.0
        self._required = False  # once keys were required, they stay required (see required())
        self._lock = threading.Lock()
        if settings.admin_key:
            api_keys.ensure_key(get_database(settings), name="admin", scope="admin", key=settings.admin_key)

    def required(self) -> bool:
        """Whether keys are required: since any key existed in this process's life. Re-checked
        every few seconds while open; never open again afterwards, so revoking the last key locks
        the API instead of opening it."""
        with self._lock:
            if self._required:
                return True
            if time.monotonic() < self._open_until:
                return False
        if api_keys.any_keys(get_database(self.settings)):
            with self._lock:
                self._required = True
            return True
        with self._lock:
            self._open_until = time.monotonic() + OPEN_RECHECK_S
        return False

    def caller(self, request: Request, scope: str) -> Caller:
        """Authenticate ``request`` for ``scope``.

        Raises:
            ApiError: ``unauthorized`` (401) or ``forbidden`` (403).
        """
        if not self.required():
            return Caller(None)
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError("unauthorized", "this API needs a key: send Authorization: Bearer KEY")
        match = _BEARER.match(header.strip())
        if match is None:
            raise ApiError("unauthorized", "malformed Authorization header: expected 'Bearer KEY'")
        key = api_keys.authenticate(get_database(self.settings), match.group(1))
        if key is None:
            raise ApiError("unauthorized", "unknown or revoked key")
        if not key.allows(scope):
            raise ApiError("forbidden", f"key {key.name!r} has scope {key.scope!r}; this needs {scope!r}")
        return Caller(key)

    def visible(self, caller: Caller, job_id: str) -> None:
        """Raise NotFound unless ``caller`` may see the job (the same answer as an unknown id)."""
        owner = queries.job_owner(get_database(self.settings), job_id)
        if not caller.sees_all and owner != caller.owner:
            raise NotFound(f"no job {job_id}")

    def check_quota(self, caller: Caller, incoming: int, chars: int = 0) -> None:
        """429 when ``caller`` would exceed ``max_queued_per_key`` unfinished documents or
        ``max_queued_chars_per_key`` unfinished characters with ``incoming`` more."""
        admit = self.admit(caller)
        if admit is not None:
            admit(incoming, chars)

    def admit(self, caller: Caller) -> Callable[[int, int], None] | None:
        """A check of the key's limits for an upload counted while it is ingested (its
        documents and characters so far), or None when no limit applies: raises
        ``service.Refused`` wrapping the 429 once the upload would pass a limit."""
        docs_limit, chars_limit = self.settings.max_queued_per_key, self.settings.max_queued_chars_per_key
        if not (docs_limit or chars_limit) or caller.owner is None:
            return None
        owner = caller.owner
        queued, queued_chars = queries.unfinished(get_database(self.settings), owner)

        def check(incoming: int, chars: int) -> None:
            if docs_limit and (queued >= docs_limit or queued + incoming > docs_limit):
                raise Refused(ApiError(
                    "too_many_requests", f"key {owner!r} has {queued:,} unfinished documents; the limit is "
                    f"{docs_limit:,} (this submit adds {incoming:,} or more): retry when some are done"))
            if chars_limit and queued_chars + chars > chars_limit:
                raise Refused(ApiError(
                    "too_many_requests", f"key {owner!r} has {queued_chars:,} unfinished characters; the limit "
                    f"is {chars_limit:,} (this submit adds {chars:,} or more): retry when some are done"))

        return check


def _swagger_script_hash(app: FastAPI) -> str:
    # FastAPI's /docs page runs one inline script; allowing exactly it (by hash) keeps the CSP
    # free of 'unsafe-inline'. Rendered with the arguments FastAPI's own /docs route passes.
    html = bytes(get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url, init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters).body).decode()
    script = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    digests = [base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in script]
    return " ".join(f"'sha256-{d}'" for d in digests)


#: Paths of FastAPI's interactive docs: their Swagger UI loads its script and styles from the
#: jsDelivr CDN, so only their pages allow it; every other response allows 'self' alone.
DOCS_PATHS = ("/docs", "/redoc")


def security_headers(app: FastAPI) -> Callable[[str], dict[str, str]]:
    """The headers every response of ``app`` carries, by request path."""
    common = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
    tail = ("; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
            "object-src 'none'")
    page = {"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "img-src 'self' data:" + tail, **common}
    docs = {"Content-Security-Policy": "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net "
                                       + _swagger_script_hash(app) + "; style-src 'self' 'unsafe-inline' "
                                       "https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com"
                                       + tail, **common}

    def for_path(path: str) -> dict[str, str]:
        return docs if path.startswith(DOCS_PATHS) else page

    return for_path
