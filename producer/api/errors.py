"""JSON error envelope of the REST API: ``{"error": {"code": ..., "message": ...}}``.

Codes are stable API: clients branch on ``code``, never on ``message``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.exc import DataError, StatementError
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from producer.service import Refused
from storage.core.errors import InvalidTransition, NotFound, PermanentError, ShitiError, TransientError

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait (``Retry-After``) when the database or broker is away.
RETRY_AFTER = 5

#: code -> HTTP status. The single source of truth for the error table in the OpenAPI docs.
CODES: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "invalid_transition": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "too_many_requests": 429,
    "internal": 500,
    "unavailable": 503,
    "timeout": 504,
}


class ErrorDetail(BaseModel):
    """``code`` (stable, one of :data:`CODES`) and ``message``; some errors add fields
    (``job_id`` on a timeout, ``request_id`` on an internal error)."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class ErrorBody(BaseModel):
    """The JSON envelope of every error."""

    error: ErrorDetail


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error answers with these statuses (FastAPI ``responses=``)."""
    by_status = {status: [c for c, s in CODES.items() if s == status] for status in statuses}
    return {status: {"model": ErrorBody, "description": "error: " + ", ".join(f"`{c}`" for c in codes)}
            for status, codes in by_status.items()}


#: Errors any route may answer: a body that is not what its content type says, no or a bad key, a scope too small, a bad parameter, the quota,
#: a failure of the server, the database or broker away.
COMMON_RESPONSES = responses(400, 401, 403, 422, 429, 500, 503)


class ApiError(ShitiError):
    """An error answered as the JSON envelope with HTTP status ``CODES[code]``."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return CODES[self.code]


def error_response(code: str, message: str, **extra: Any) -> JSONResponse:
    """The envelope as a response."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=CODES[code])


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_input"}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        got = err.get("input")
        shown = f" (got {str(got)[:40]!r})" if isinstance(got, (str, int, float)) else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI, headers: Callable[[str], dict[str, str]]) -> None:
    """Register the handlers that turn every failure into the envelope.

    Args:
        headers: the security headers of a response to a path; the catch-all answers outside
            the middleware that adds them, so it adds them itself.
    """

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        return await _api(request, exc.error) if isinstance(exc.error, ApiError) else \
            error_response("invalid_input", str(exc.error))

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.code, exc.message, **exc.extra)
        if exc.code == "unauthorized":
            response.headers["WWW-Authenticate"] = 'Bearer realm="shiti"'
        elif exc.code == "too_many_requests":
            response.headers["Retry-After"] = str(RETRY_AFTER * 12)
        return response

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response("not_found", str(exc) or "not found")

    @app.exception_handler(InvalidTransition)
    async def _transition(_: Request, exc: InvalidTransition) -> JSONResponse:
        return error_response("invalid_transition", str(exc))

    @app.exception_handler(PermanentError)
    async def _permanent(_: Request, exc: PermanentError) -> JSONResponse:
        return error_response("invalid_input", str(exc))

    @app.exception_handler(TransientError)
    async def _transient(_: Request, exc: TransientError) -> JSONResponse:
        # The database or broker is down, restarting or locked: nothing was lost, the client retries.
        log.warning("unavailable: %s", exc)
        response = error_response("unavailable", str(exc))
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    @app.exception_handler(ShitiError)
    async def _shiti(_: Request, exc: ShitiError) -> JSONResponse:
        log.exception("unclassified shiti error", exc_info=exc)
        return error_response("internal", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_input", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
        response = error_response(code, str(exc.detail))
        response.status_code = exc.status_code
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only; a path served
            # by several routes (GET and POST /jobs) allows all of theirs. Routes sit inside the
            # included routers, so each method is asked of the router as a whole.
            allowed = [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] == Match.FULL
                                                  for r in request.app.router.routes)]
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(StatementError)
    async def _data(request: Request, exc: StatementError) -> JSONResponse:
        # A value the database refuses (too long for its column, a NUL on PostgreSQL) that the
        # field rules let through: the input's fault, not the server's, and nothing was stored.
        if isinstance(exc, DataError) or isinstance(exc.orig, ValueError):
            log.warning("the database refused a value: %s", exc.orig)
            return error_response("invalid_input", f"a value cannot be stored: {str(exc.orig)[:200]}")
        return await _internal(request, exc)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.error("unexpected error, request %s: %s %s", request_id, request.method, request.url.path, exc_info=exc)
        response = error_response("internal", f"unexpected server error (request id {request_id}); "
                                  "the log has its traceback", request_id=request_id)
        for name, value in headers(request.url.path).items():
            response.headers.setdefault(name, value)
        return response
