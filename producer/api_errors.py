"""JSON error envelope of the REST API: ``{"error": {"code": ..., "message": ...}}``.

Codes are stable API: clients branch on ``code``, never on ``message``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.errors import InvalidTransition, NotFound, PermanentError, ShitiError, TransientError

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


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_input"}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the envelope."""

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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
        response = error_response(code, str(exc.detail))
        response.status_code = exc.status_code
        return response
