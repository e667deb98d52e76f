"""REST API and web page, thin over ``producer.service``. Never imports torch or ``worker``.

``create_app(settings)`` builds the FastAPI app (OpenAPI docs at ``/docs``) from the route modules
(``ops``, ``jobs``, ``entities``); ``serve`` runs it with uvicorn for ``shiti serve``. Errors are
``{"error": {"code", "message"}}`` with the codes in ``producer.api.errors.CODES``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from producer.api import dicts, entities, jobs, ops, overview, review
from producer.api import errors as api_errors
from producer.api.auth import Auth, security_headers
from producer.api.deps import ApiState
from producer.api.upload import BodyLimit
from storage.core.errors import EXIT_CONFIG
from storage.core.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = ops.STATIC_DIR
DEFAULT_EXTRACT_TIMEOUT = 30.0


def create_app(settings: Settings, *, extract_timeout: float = DEFAULT_EXTRACT_TIMEOUT) -> FastAPI:
    """Build the API + dashboard app for ``settings``.

    Args:
        settings: shiti settings (database, broker, ``max_upload_bytes``).
        extract_timeout: seconds ``POST /extract`` waits for a worker unless the request says.
    """
    app = FastAPI(
        responses=api_errors.COMMON_RESPONSES,
        title="shiti",
        version="0.1.0",
        description="Bulk Chinese named-entity extraction (the entity types are the model's: "
                    "`GET /models`). Errors are "
                    '`{"error": {"code": ..., "message": ...}}` with codes: '
                    + ", ".join(f"`{c}` ({s})" for c, s in api_errors.CODES.items()) + ".",
    )
    app.state.api = ApiState(settings=settings, auth=Auth(settings), extract_timeout=extract_timeout)
    headers = security_headers(app)
    api_errors.install(app, headers)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for name, value in headers(request.url.path).items():
            response.headers.setdefault(name, value)
        return response

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (ops.router, jobs.router, entities.router, overview.router, dicts.router,
                   review.router):
        app.include_router(router)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, insecure: bool = False) -> None:
    """Run the API and dashboard with uvicorn until interrupted (``shiti serve``).

    Refuses to start (exit 78, one line per problem) on a database behind the code, and on a
    non-loopback address while no API key exists (anyone who can reach it could read and submit)
    unless ``insecure``. On loopback with no key it serves openly, with a warning.
    """
    import uvicorn

    from storage.sql import keys as api_keys
    from storage.sql.db import get_database, schema_problems

    problems = schema_problems(settings)
    if not problems and not settings.admin_key and not api_keys.any_keys(get_database(settings)):
        if not _loopback(host) and not insecure:
            problems.append(f"no API key exists and {host} is not a loopback address: create one "
                            "(`shiti keys create --name NAME --scope admin`, or set SHITI_ADMIN_KEY), "
                            "or pass --insecure to serve it open")
        else:
            log.warning("no API key exists: the API is open to anyone who can reach %s:%d "
                        "(create one with `shiti keys create`)", host, port)
    for problem in problems:
        print(f"shiti serve: refusing to start: {problem}", file=sys.stderr, flush=True)
    if problems:
        raise SystemExit(EXIT_CONFIG)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
