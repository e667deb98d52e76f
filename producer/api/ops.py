"""Routes about the service itself: the page, health, the caller's key, the state machines, the
models a job may name, Prometheus metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse

from producer import service
from producer.api import metrics
from producer.api.auth import Caller
from producer.api.deps import READ, STATE, ApiState
from storage.core.domain import DOC_TERMINAL, DOC_TRANSITIONS, JOB_TERMINAL, JOB_TRANSITIONS, DocumentStatus, JobStatus
from storage.core.views import ModelView

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs/", include_in_schema=False)
def docs_slash() -> RedirectResponse:
    return RedirectResponse("/docs")


@router.get("/healthz", tags=["ops"])
def healthz() -> dict[str, str]:
    """Liveness: answers without touching the database or the broker."""
    return {"status": "ok"}


@router.get("/whoami", tags=["ops"])
def whoami(caller: Caller = READ) -> dict[str, Any]:
    """The calling key's name and scope (``{"open": true}`` while no key exists)."""
    if caller.key is None:
        return {"open": True}
    return {"open": False, "name": caller.key.name, "scope": caller.key.scope}


@router.get("/states", tags=["ops"])
def states(caller: Caller = READ) -> dict[str, Any]:
    """The job and document state machines (``storage/core/domain.py``): every state, the terminal
    ones, and the allowed transitions. The web page takes its state lists from here."""
    return {
        "job": {"states": [str(s) for s in JobStatus], "terminal": sorted(str(s) for s in JOB_TERMINAL),
                "transitions": {str(a): sorted(str(b) for b in bs) for a, bs in JOB_TRANSITIONS.items()}},
        "document": {"states": [str(s) for s in DocumentStatus],
                     "terminal": sorted(str(s) for s in DOC_TERMINAL),
                     "transitions": {str(a): sorted(str(b) for b in bs) for a, bs in DOC_TRANSITIONS.items()}},
    }


@router.get("/models", tags=["ops"])
def models(caller: Caller = READ, api: ApiState = STATE) -> list[ModelView]:
    """Models a job may name: this server's models directory (entries workers cannot serve with
    the reason) and those live workers serve, with their labels, content hash and live worker count."""
    return service.list_model_views(api.settings)


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
def prometheus(request: Request, api: ApiState = STATE) -> PlainTextResponse:
    """Prometheus text format: jobs by state, documents by status, docs/s, chars/s, queue depth,
    deployment-wide: needs an admin key unless ``SHITI_METRICS_PUBLIC`` is set."""
    if not api.settings.metrics_public:
        api.auth.caller(request, "admin")  # 401/403 unless an admin key
    return PlainTextResponse(metrics.render(api.settings), media_type=metrics.CONTENT_TYPE)
