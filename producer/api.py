"""REST API and web page, thin over ``producer.service``. Never imports torch or ``worker``.

``create_app(settings)`` builds the FastAPI app (OpenAPI docs at ``/docs``); ``serve`` runs it
with uvicorn for ``shiti serve``. Errors are ``{"error": {"code", "message"}}`` with the codes
in ``producer.api_errors.CODES``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from producer import api_errors, api_queries, fields, metrics, service
from producer.api_auth import Auth, Caller, security_headers
from producer.api_errors import ApiError
from producer.api_upload import (
    BodyLimit,
    load_json_documents,
    looks_like_json_array,
    normalise_format,
    read_body,
    release_memory,
    spool,
)
from storage.domain import (
    DOC_TERMINAL,
    DOC_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    DocumentStatus,
    JobStatus,
)
from storage.errors import EXIT_CONFIG, JobWaitTimeout, NotFound, PermanentError
from storage.settings import Settings
from storage.views import (
    DiffView,
    DocumentView,
    EntityPage,
    ExtractResult,
    JobPage,
    JobProgress,
    JobSummary,
    ModelView,
    RetryResult,
    SubmitView,
    TopEntities,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_EXTRACT_TIMEOUT = 30.0
EXTRACT_DOC_ID = "1"

def _text(limit: int, pattern: str, description: str = "", nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"] if nullable else "string", "maxLength": limit,
                              "pattern": pattern}
    return schema | ({"description": description} if description else {})


_OPTIONS = {
    "client_token": _text(fields.MAX_CLIENT_TOKEN, fields.SINGLE_LINE_PATTERN, "idempotency key"),
    "name": _text(fields.MAX_NAME, fields.NO_NUL_PATTERN, "job name"),
    "model": _text(fields.MAX_MODEL, fields.SINGLE_LINE_PATTERN, "model name (`GET /models`)"),
    "notify": _text(fields.MAX_URL, fields.SINGLE_LINE_PATTERN, "completion webhook URL"),
    "id_field": _text(fields.MAX_FIELD_NAME, fields.SINGLE_LINE_PATTERN) | {"default": "id"},
    "text_field": _text(fields.MAX_FIELD_NAME, fields.SINGLE_LINE_PATTERN) | {"default": "text"},
}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "corpus: .jsonl/.ndjson, .txt (one document per line), "
                                                ".csv, or .json (an array of {id, text})"},
                        "format": {"type": "string", "enum": ["jsonl", "ndjson", "text", "txt", "csv", "json"]},
                        "priority": {"type": "integer", "minimum": 1, "maximum": 100},
                        **_OPTIONS,
                    },
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {},
                         "description": "documents: objects with `id` and `text`; any other item is stored "
                                        "as a `malformed` document"},
                        {"type": "object", "required": ["documents"], "properties": {
                            "documents": {"type": "array", "items": {}},
                            "priority": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
                            **{k: v | {"type": ["string", "null"]} for k, v in _OPTIONS.items()}}},
                    ]
                },
                "example": [{"id": "a1", "text": "张伟在北京大学读书。"}],
            },
        },
    },
}
_ONE_JOB = api_errors.responses(404)
_TRANSITION = api_errors.responses(404, 409)


class ExtractRequest(BaseModel):
    """One text to tag."""

    text: str = Field(..., description="the text; offsets in the answer index its code points",
                      examples=["张伟在北京大学读书，毕业后加入了阿里巴巴。"])
    timeout: float | None = Field(None, ge=1, le=600, description="seconds to wait for a worker")
    model: str | None = Field(None, max_length=fields.MAX_MODEL, pattern=fields.SINGLE_LINE_PATTERN,
                              description="model name (`GET /models`); default the server's SHITI_MODEL")


def _filter_query(description: str) -> Any:
    return Query(None, max_length=fields.MAX_FILTER, pattern=fields.NO_NUL_PATTERN, description=description)


_TOKEN = Query(None, max_length=fields.MAX_CLIENT_TOKEN, pattern=fields.SINGLE_LINE_PATTERN,
               description="idempotency key (also the Idempotency-Key header)")
_NAME = Query(None, max_length=fields.MAX_NAME, pattern=fields.NO_NUL_PATTERN, description="job name")
_MODEL = Query(None, max_length=fields.MAX_MODEL, pattern=fields.SINGLE_LINE_PATTERN,
               description="model name (`GET /models`); default the server's SHITI_MODEL")
_NOTIFY = Query(None, max_length=fields.MAX_URL, pattern=fields.SINGLE_LINE_PATTERN,
                description="completion webhook URL (docs/webhooks.md)")
_CURSOR = Query(None, pattern=fields.CURSOR_PATTERN, description="`next_cursor` of the previous page")


def _cursor(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    # ASCII digits only (str.isdigit() accepts "²" and other digits int() refuses), below 2^63
    # (the largest id either database holds).
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 2**63):
        raise ApiError("invalid_input", f"cursor {value[:40]!r} is not one this API returned")
    return value


def _filter(name: str, value: str | None) -> str | None:
    return fields.filter_value(name, value or None)  # PermanentError: 422 like any bad input


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
        description="Bulk Chinese named-entity extraction (PER/LOC/ORG). Errors are "
                    '`{"error": {"code": ..., "message": ...}}` with codes: '
                    + ", ".join(f"`{c}` ({s})" for c, s in api_errors.CODES.items()) + ".",
    )
    app.state.settings = settings
    headers = security_headers(app)
    api_errors.install(app, headers)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    auth = Auth(settings)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for name, value in headers(request.url.path).items():
            response.headers.setdefault(name, value)
        return response

    def need(scope: str) -> Any:
        def caller(request: Request) -> Caller:
            return auth.caller(request, scope)

        return Depends(caller)

    READ, SUBMIT = need("read"), need("submit")

    def own(job_id: str, caller: Caller) -> None:
        if not fields.is_job_id(job_id):  # no job has such an id: answered without a query
            raise NotFound(f"no job {job_id[:40]!r}")
        auth.visible(caller, job_id)

    # ---------------------------------------------------------------- page + health

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: answers without touching the database or the broker."""
        return {"status": "ok"}

    @app.get("/whoami", tags=["ops"])
    def whoami(caller: Caller = READ) -> dict[str, Any]:
        """The calling key's name and scope (``{"open": true}`` while no key exists)."""
        if caller.key is None:
            return {"open": True}
        return {"open": False, "name": caller.key.name, "scope": caller.key.scope}

    @app.get("/states", tags=["ops"])
    def states(caller: Caller = READ) -> dict[str, Any]:
        """The job and document state machines (``storage/domain.py``): every state, the terminal
        ones, and the allowed transitions. The web page takes its state lists from here."""
        return {
            "job": {"states": [str(s) for s in JobStatus], "terminal": sorted(str(s) for s in JOB_TERMINAL),
                    "transitions": {str(a): sorted(str(b) for b in bs) for a, bs in JOB_TRANSITIONS.items()}},
            "document": {"states": [str(s) for s in DocumentStatus],
                         "terminal": sorted(str(s) for s in DOC_TERMINAL),
                         "transitions": {str(a): sorted(str(b) for b in bs) for a, bs in DOC_TRANSITIONS.items()}},
        }

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus(request: Request) -> PlainTextResponse:
        """Prometheus text format: jobs by state, documents by status, docs/s, chars/s, queue depth,
        deployment-wide: needs an admin key unless ``SHITI_METRICS_PUBLIC`` is set."""
        if not settings.metrics_public:
            auth.caller(request, "admin")  # 401/403 unless an admin key
        return PlainTextResponse(metrics.render(settings), media_type=metrics.CONTENT_TYPE)

    # ---------------------------------------------------------------- jobs

    @app.post("/jobs", status_code=202, tags=["jobs"], openapi_extra=_UPLOAD_DOC,
              responses={200: {"model": SubmitView, "description": "the job of an earlier call with this token"},
                         202: {"model": SubmitView, "description": "a new job"}, **api_errors.responses(413, 415)})
    async def submit_job(request: Request, client_token: str | None = _TOKEN,
                         name: str | None = _NAME, format: str | None = Query(None, max_length=10),
                         model: str | None = _MODEL,
                         priority: int | None = Query(None, ge=1, le=100, description="fair-share weight (default 1)"),
                         notify: str | None = _NOTIFY,
                         caller: Caller = SUBMIT) -> JSONResponse:
        """Submit a corpus: a multipart file upload, or a JSON list of `{id, text}` documents.

        The client token (query, form field, JSON key or `Idempotency-Key` header) makes the call
        idempotent: the same token returns the same job (200) instead of creating one (202).
        `model`, `priority` and `notify` may also be form fields or JSON keys. An unknown model
        (422, the known ones listed) or a refused webhook URL stores nothing.
        """
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        options: dict[str, Any] = {"client_token": client_token or request.headers.get("idempotency-key"),
                                   "name": name, "format": format, "model": model, "priority": priority,
                                   "notify": notify}
        if ctype == "multipart/form-data":
            # The size of an upload is known only once read: refuse at once when already at the limit,
            # then count its documents and characters as they are stored (admit).
            await run_in_threadpool(auth.check_quota, caller, 0)
            result = await _submit_upload(request, options, caller)
        elif ctype in ("application/json", "text/json") or ctype.endswith("+json"):
            raw = await read_body(request, limit=settings.max_json_bytes)
            try:
                docs, body_options = await run_in_threadpool(load_json_documents, raw)
                del raw
                _merge(options, body_options)
                await run_in_threadpool(auth.check_quota, caller, len(docs))
                job = await run_in_threadpool(_job_options, options)
                result = await run_in_threadpool(
                    service.submit_corpus, settings, docs, client_token=options["client_token"],
                    name=options["name"] or "api upload", owner=caller.owner, options=job,
                    max_doc_chars=settings.max_api_doc_chars, admit=auth.admit(caller), **_fields(options))
            finally:
                docs = []
                await run_in_threadpool(release_memory)
        else:
            raise ApiError("unsupported_media_type",
                           "send multipart/form-data with a 'file' field, or application/json")
        body: SubmitView = {"job_id": result.job_id, "created": result.created, "documents": result.documents,
                            "rejected": result.rejected, "lines": result.lines}
        return JSONResponse(body, status_code=202 if result.created else 200,
                            headers={"Location": f"/jobs/{result.job_id}"})

    async def _submit_upload(request: Request, options: dict[str, Any], caller: Caller) -> service.SubmitResult:
        form = await request.form(max_files=1, max_fields=20)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError("invalid_input", "multipart upload needs a file in the 'file' field")
            _merge(options, {k: v for k, v in form.items() if isinstance(v, str) and v})
            fmt = normalise_format(options["format"])
            path = await run_in_threadpool(spool, upload.file, filename=upload.filename,
                                           directory=Path(settings.data_dir) / "uploads")
        finally:
            await form.close()
        try:
            job = await run_in_threadpool(_job_options, options)
            name = options["name"] or fields.safe_name(upload.filename) or "upload"
            source: Any = path
            if fmt == "json" or (fmt is None and path.suffix == ".json" and looks_like_json_array(path)):
                source, _ = await run_in_threadpool(load_json_documents, path)
                fmt = None
            return await run_in_threadpool(service.submit_corpus, settings, source, fmt=fmt,
                                           client_token=options["client_token"], name=name,
                                           owner=caller.owner, options=job,
                                           max_doc_chars=settings.max_api_doc_chars, admit=auth.admit(caller),
                                           **_fields(options))
        except PermanentError as exc:
            # A reader names the file it read: the client knows its upload by its own name, and the
            # server's spool directory is none of its business.
            raise PermanentError(str(exc).replace(str(path), upload.filename or "the upload")) from None
        finally:
            path.unlink(missing_ok=True)

    def _job_options(options: dict[str, Any]) -> service.JobOptions:
        priority = options.get("priority")
        try:
            priority = 1 if priority in (None, "") else int(priority)
        except (TypeError, ValueError):
            raise ApiError("invalid_input", f"priority must be an integer from 1 to 100, not {priority!r}") from None
        return service.job_options(settings, model=options.get("model") or None, priority=priority,
                                   notify_url=options.get("notify") or None)

    @app.post("/jobs/{job_id}/rerun", responses=_ONE_JOB, status_code=202, tags=["jobs"])
    def rerun_job(job_id: str, model: str | None = _MODEL,
                  priority: int = Query(1, ge=1, le=100), notify: str | None = _NOTIFY,
                  name: str | None = _NAME, caller: Caller = SUBMIT) -> JSONResponse:
        """A new job over this job's stored documents (nothing re-uploaded), tagged by `model`;
        compare the two with `GET /jobs/{job_id}/diff/{other_id}`."""
        own(job_id, caller)
        job = _job_options({"model": model, "priority": priority, "notify": notify})
        fields.NAME.check(name)
        source = service.job_status(settings, job_id)
        auth.check_quota(caller, source["total"], source["chars_total"])  # a rerun queues them all again
        result = service.rerun_job(settings, job_id, options=job, owner=caller.owner, name=name)
        body: SubmitView = {"job_id": result.job_id, "created": True, "documents": result.documents,
                            "rejected": result.rejected, "lines": result.documents}
        return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{result.job_id}"})

    @app.get("/jobs/{job_id}/diff/{other_id}", responses=_ONE_JOB, tags=["entities"])
    def diff_jobs(job_id: str, other_id: str, limit: int = Query(100, ge=0, le=10000),
                  caller: Caller = READ) -> DiffView:
        """Entities only in `job_id` (A), only in `other_id` (B), and whose type changed, with
        counts per type; the jobs must hold the same documents (e.g. a job and its rerun)."""
        own(job_id, caller)
        own(other_id, caller)
        return service.diff_jobs(settings, job_id, other_id, limit=limit)

    @app.get("/models", tags=["ops"])
    def models(caller: Caller = READ) -> list[ModelView]:
        """Models a job may name: this server's models directory (broken entries with the reason)
        and those live workers serve, with their content hash and live worker count."""
        return service.list_model_views(settings)

    @app.get("/jobs", tags=["jobs"])
    def list_jobs(state: JobStatus | None = Query(None, description="filter by job state"),
                  limit: int = Query(50, ge=1, le=500), cursor: str | None = _CURSOR,
                  caller: Caller = READ) -> JobPage:
        """Jobs, newest first, one page at a time (pass `next_cursor` back as `cursor`): the key's
        own jobs (all of them for an admin key).

        Jobs still running carry the live fields of `GET /jobs/{id}` (rates, ETA)."""
        page = service.list_jobs(settings, state=state.value if state else None, limit=limit, cursor=_cursor(cursor),
                                 owner=None if caller.sees_all else caller.owner)
        page["items"] = [_live(item) for item in page["items"]]
        return page

    def _live(item: JobSummary | JobProgress) -> JobSummary | JobProgress:
        if item["state"] in JOB_TERMINAL:
            return item
        try:
            return service.job_status(settings, item["job_id"])
        except service.NotFound:  # deleted between the two reads
            return item

    @app.get("/jobs/{job_id}", responses=_ONE_JOB, tags=["jobs"])
    def get_job(job_id: str, caller: Caller = READ) -> JobProgress:
        """Progress of one job (the same fields as `shiti status --json`)."""
        own(job_id, caller)
        return service.job_status(settings, job_id)

    @app.post("/jobs/{job_id}/cancel", responses=_TRANSITION, tags=["jobs"])
    def cancel_job(job_id: str, caller: Caller = SUBMIT) -> JobProgress:
        """Cancel: documents not yet claimed are skipped; 409 when the job already finished."""
        own(job_id, caller)
        return service.cancel_job(settings, job_id)

    @app.post("/jobs/{job_id}/retry", responses=_TRANSITION, tags=["jobs"])
    def retry_job(job_id: str, caller: Caller = SUBMIT) -> RetryResult:
        """Re-queue the job's failed documents (not those rejected as bad input)."""
        own(job_id, caller)
        return service.retry_failed(settings, job_id)

    @app.get("/jobs/{job_id}/throughput", responses=_ONE_JOB, tags=["jobs"])
    def throughput(job_id: str, buckets: int = Query(40, ge=2, le=500), caller: Caller = READ) -> dict[str, Any]:
        """Completed documents and characters per second over the job's running time."""
        own(job_id, caller)
        return api_queries.throughput(settings, job_id, buckets=buckets)

    # ---------------------------------------------------------------- entities & documents

    @app.get("/jobs/{job_id}/entities", responses=_ONE_JOB, tags=["entities"])
    def entities(job_id: str,
                 type: str | None = _filter_query("entity label, e.g. PER, LOC, ORG"),
                 text: str | None = _filter_query("exact entity text"),
                 doc: str | None = _filter_query("document id"),
                 cursor: str | None = _CURSOR, limit: int = Query(100, ge=1, le=1000),
                 caller: Caller = READ) -> EntityPage:
        """Entities of a job in a stable order (keyset pagination: pass `next_cursor` back)."""
        own(job_id, caller)
        return service.find_entities(settings, job_id, label=_filter("type", type), text=_filter("text", text),
                                     doc=_filter("doc", doc), cursor=_cursor(cursor), limit=limit)

    @app.get("/jobs/{job_id}/entities/top", responses=_ONE_JOB, tags=["entities"])
    def top(job_id: str, type: str | None = _filter_query("entity label"), limit: int = Query(20, ge=1, le=500),
            caller: Caller = READ) -> TopEntities:
        """Most frequent entity strings, `limit` per label, most frequent first."""
        own(job_id, caller)
        items = service.top_entities(settings, job_id, label=_filter("type", type), limit=limit)
        return {"items": sorted(items, key=lambda e: (-e["count"], e["label"], e["text"]))}

    @app.get("/jobs/{job_id}/documents/{doc_id:path}", responses=_ONE_JOB, tags=["entities"])
    def document(job_id: str, doc_id: str, caller: Caller = READ) -> DocumentView:
        """One document: its stored text, state and entities (end-exclusive code-point offsets)."""
        own(job_id, caller)
        if fields.DOC_ID.problem(doc_id) is not None:  # no stored document has such an id
            raise NotFound(f"no document {doc_id[:40]!r} in job {job_id}")
        return service.get_document(settings, job_id, doc_id)

    @app.get("/jobs/{job_id}/export", responses=_ONE_JOB, tags=["entities"], response_class=StreamingResponse)
    def export(job_id: str, caller: Caller = READ) -> StreamingResponse:
        """Every document's entities as JSON Lines, streamed (one record per document)."""
        own(job_id, caller)
        records = service.export_entities(settings, job_id)  # NotFound before the stream starts

        def lines() -> Iterator[bytes]:
            for record in records:
                yield (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
            "Content-Disposition": f'attachment; filename="shiti-{job_id}.jsonl"'})

    # ---------------------------------------------------------------- one sentence

    @app.post("/extract", tags=["entities"], responses=api_errors.responses(504))
    async def extract(body: ExtractRequest, caller: Caller = SUBMIT) -> ExtractResult:
        """Tag one text: it becomes a one-document job, answered when a worker has done it."""
        await run_in_threadpool(auth.check_quota, caller, 1, len(body.text))
        job = await run_in_threadpool(_job_options, {"model": body.model})
        result = await run_in_threadpool(service.submit_corpus, settings,
                                         [{"id": EXTRACT_DOC_ID, "text": body.text}],
                                         name=_extract_name(body.text), owner=caller.owner, options=job,
                                         max_doc_chars=settings.max_api_doc_chars)
        timeout = body.timeout or extract_timeout
        try:
            # A thread of the pool waits (at most `timeout`); polls start at 20 ms and back off.
            await run_in_threadpool(service.wait_job, settings, result.job_id, timeout=timeout, poll=0.02,
                                    max_poll=0.25)
        except JobWaitTimeout:
            raise ApiError("timeout", f"no worker finished the text within {timeout:g} s; "
                           f"poll GET /jobs/{result.job_id}", job_id=result.job_id) from None
        doc = await run_in_threadpool(service.get_document, settings, result.job_id, EXTRACT_DOC_ID)
        return {"job_id": result.job_id, "text": doc["text"], "state": doc["state"],
                "reason": doc["reason"], "entities": doc["entities"]}

    @app.get("/docs/", include_in_schema=False)
    def docs_slash() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app


def _extract_name(text: str) -> str:
    snippet = " ".join(text.split())
    return fields.safe_name("extract: " + (snippet[:24] + "…" if len(snippet) > 24 else snippet)) or "extract"


def _merge(options: dict[str, Any], extra: dict[str, Any]) -> None:
    for key in ("client_token", "name", "format", "id_field", "text_field", "model", "priority", "notify"):
        if extra.get(key) not in (None, ""):  # a priority of 0 is a (bad) value, not an absent one
            options[key] = extra[key]


def _fields(options: dict[str, Any]) -> dict[str, str]:
    return {k: options[k] for k in ("id_field", "text_field") if options.get(k)}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, insecure: bool = False) -> None:
    """Run the API and dashboard with uvicorn until interrupted (``shiti serve``).

    Refuses to start (exit 78, one line per problem) on a database behind the code, and on a
    non-loopback address while no API key exists (anyone who can reach it could read and submit)
    unless ``insecure``. On loopback with no key it serves openly, with a warning.
    """
    import uvicorn

    from storage import keys as api_keys
    from storage.db import get_database, schema_problems

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
