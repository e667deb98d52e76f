"""Routes of jobs: submit (multipart upload or JSON), rerun, list, progress, cancel, pause, resume, retry,
throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from producer import fields, service
from producer.api import errors as api_errors
from producer.api.auth import Caller
from producer.api.deps import CURSOR, MODEL, NAME, NOTIFY, READ, STATE, SUBMIT, TOKEN, ApiState, cursor_value, \
    job_options, own
from producer.api.errors import ApiError
from producer.api.upload import load_json_documents, looks_like_json_array, normalise_format, read_body, \
    release_memory, spool
from storage.core.domain import JOB_TERMINAL, JobStatus
from storage.core.errors import PermanentError
from storage.core.views import JobPage, JobProgress, JobSummary, RetryResult, SubmitView

router = APIRouter(tags=["jobs"])
ONE_JOB = api_errors.responses(404)
_TRANSITION = api_errors.responses(404, 409)


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
_FOLD_DOC = "fold Traditional characters to Simplified before the model (default true)"
FOLD: Any = Query(None, description=_FOLD_DOC)
_INCREMENTAL_DOC = ("reuse the entities of identical earlier documents (same text, model, dictionary, fold and "
                    "window settings) instead of tagging them again (default false)")
INCREMENTAL: Any = Query(None, description=_INCREMENTAL_DOC)
_DICT_DOC = "user dictionary applied after the model: NAME or NAME@VERSION (`GET /dicts`)"
DICT_ALIAS: Any = Query(None, alias="dict", max_length=120, pattern=fields.SINGLE_LINE_PATTERN, description=_DICT_DOC)
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
                        "fold": {"type": "string", "enum": ["true", "false"], "description": _FOLD_DOC},
                        "dict": {"type": "string", "maxLength": 120, "description": _DICT_DOC},
                        "incremental": {"type": "string", "enum": ["true", "false"], "description": _INCREMENTAL_DOC},
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
                            "fold": {"type": ["boolean", "null"], "description": _FOLD_DOC},
                            "dict": {"type": ["string", "null"], "maxLength": 120, "description": _DICT_DOC},
                            "incremental": {"type": ["boolean", "null"], "description": _INCREMENTAL_DOC},
                            **{k: v | {"type": ["string", "null"]} for k, v in _OPTIONS.items()}}},
                    ]
                },
                "example": [{"id": "a1", "text": "张伟在北京大学读书。"}],
            },
        },
    },
}


@router.post("/jobs", status_code=202, openapi_extra=_UPLOAD_DOC,
             responses={200: {"model": SubmitView, "description": "the job of an earlier call with this token"},
                        202: {"model": SubmitView, "description": "a new job"}, **api_errors.responses(413, 415)})
async def submit_job(request: Request, client_token: str | None = TOKEN,
                     name: str | None = NAME, format: str | None = Query(None, max_length=10),
                     model: str | None = MODEL,
                     priority: int | None = Query(None, ge=1, le=100, description="fair-share weight (default 1)"),
                     notify: str | None = NOTIFY, fold: bool | None = FOLD, dict_: str | None = DICT_ALIAS,
                     incremental: bool | None = INCREMENTAL,
                     caller: Caller = SUBMIT, api: ApiState = STATE) -> JSONResponse:
    """Submit a corpus: a multipart file upload, or a JSON list of `{id, text}` documents.

    The client token (query, form field, JSON key or `Idempotency-Key` header) makes the call
    idempotent: the same token returns the same job (200) instead of creating one (202).
    `model`, `priority`, `notify`, `fold` and `dict` may also be form fields or JSON keys. An unknown
    model (422, the known ones listed), an unknown dictionary or one naming types the model does not
    tag, or a refused webhook URL stores nothing.
    """
    settings, auth = api.settings, api.auth
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options: dict[str, Any] = {"client_token": client_token or request.headers.get("idempotency-key"),
                               "name": name, "format": format, "model": model, "priority": priority,
                               "notify": notify, "fold": fold, "dict": dict_, "incremental": incremental}
    if ctype == "multipart/form-data":
        # The size of an upload is known only once read: refuse at once when already at the limit,
        # then count its documents and characters as they are stored (admit).
        await run_in_threadpool(auth.check_quota, caller, 0)
        result = await _submit_upload(request, api, options, caller)
    elif ctype in ("application/json", "text/json") or ctype.endswith("+json"):
        raw = await read_body(request, limit=settings.max_json_bytes)
        try:
            docs, body_options = await run_in_threadpool(load_json_documents, raw)
            del raw
            _merge(options, body_options)
            await run_in_threadpool(auth.check_quota, caller, len(docs))
            job = await run_in_threadpool(job_options, settings, options, caller)
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
                        "rejected": result.rejected, "lines": result.lines,
                        "reused": result.reused}
    return JSONResponse(body, status_code=202 if result.created else 200,
                        headers={"Location": f"/jobs/{result.job_id}"})


async def _submit_upload(request: Request, api: ApiState, options: dict[str, Any],
                         caller: Caller) -> service.SubmitResult:
    settings = api.settings
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
        job = await run_in_threadpool(job_options, settings, options, caller)
        name = options["name"] or fields.safe_name(upload.filename) or "upload"
        source: Any = path
        if fmt == "json" or (fmt is None and path.suffix == ".json" and looks_like_json_array(path)):
            source, _ = await run_in_threadpool(load_json_documents, path)
            fmt = None
        return await run_in_threadpool(service.submit_corpus, settings, source, fmt=fmt,
                                       client_token=options["client_token"], name=name,
                                       owner=caller.owner, options=job,
                                       max_doc_chars=settings.max_api_doc_chars, admit=api.auth.admit(caller),
                                       **_fields(options))
    except PermanentError as exc:
        # A reader names the file it read: the client knows its upload by its own name, and the
        # server's spool directory is none of its business.
        raise PermanentError(str(exc).replace(str(path), upload.filename or "the upload")) from None
    finally:
        path.unlink(missing_ok=True)


def _merge(options: dict[str, Any], extra: dict[str, Any]) -> None:
    for key in ("client_token", "name", "format", "id_field", "text_field", "model", "priority", "notify", "fold", "dict",
                "incremental"):
        if extra.get(key) not in (None, ""):  # a priority of 0 is a (bad) value, not an absent one
            options[key] = extra[key]


def _fields(options: dict[str, Any]) -> dict[str, str]:
    return {k: options[k] for k in ("id_field", "text_field") if options.get(k)}


@router.post("/jobs/{job_id}/rerun", responses=ONE_JOB, status_code=202)
def rerun_job(job_id: str, model: str | None = MODEL,
              priority: int = Query(1, ge=1, le=100), notify: str | None = NOTIFY,
              name: str | None = NAME, fold: bool | None = FOLD, dict_: str | None = DICT_ALIAS,
              incremental: bool | None = INCREMENTAL, caller: Caller = SUBMIT,
              api: ApiState = STATE) -> JSONResponse:
    """A new job over this job's stored documents (nothing re-uploaded), tagged by `model`;
    compare the two with `GET /jobs/{job_id}/diff/{other_id}`."""
    own(api, job_id, caller)
    job = job_options(api.settings, {"model": model, "priority": priority, "notify": notify, "fold": fold,
                                     "dict": dict_, "incremental": incremental}, caller)
    fields.NAME.check(name)
    source = service.job_status(api.settings, job_id)
    api.auth.check_quota(caller, source["total"], source["chars_total"])  # a rerun queues them all again
    result = service.rerun_job(api.settings, job_id, options=job, owner=caller.owner, name=name)
    body: SubmitView = {"job_id": result.job_id, "created": True, "documents": result.documents,
                        "rejected": result.rejected, "lines": result.documents,
                        "reused": result.reused}
    return JSONResponse(body, status_code=202, headers={"Location": f"/jobs/{result.job_id}"})


@router.get("/jobs")
def list_jobs(state: JobStatus | None = Query(None, description="filter by job state"),
              limit: int = Query(50, ge=1, le=500), cursor: str | None = CURSOR,
              caller: Caller = READ, api: ApiState = STATE) -> JobPage:
    """Jobs, newest first, one page at a time (pass `next_cursor` back as `cursor`): the key's
    own jobs (all of them for an admin key).

    Jobs still running carry the live fields of `GET /jobs/{id}` (rates, ETA)."""
    page = service.list_jobs(api.settings, state=state.value if state else None, limit=limit,
                             cursor=cursor_value(cursor), owner=None if caller.sees_all else caller.owner)
    page["items"] = [_live(api, item) for item in page["items"]]
    return page


def _live(api: ApiState, item: JobSummary | JobProgress) -> JobSummary | JobProgress:
    if item["state"] in JOB_TERMINAL:
        return item
    try:
        return service.job_status(api.settings, item["job_id"])
    except service.NotFound:  # deleted between the two reads
        return item


@router.get("/jobs/{job_id}", responses=ONE_JOB)
def get_job(job_id: str, caller: Caller = READ, api: ApiState = STATE) -> JobProgress:
    """Progress of one job (the same fields as `shiti status --json`)."""
    own(api, job_id, caller)
    return service.job_status(api.settings, job_id)


@router.post("/jobs/{job_id}/cancel", responses=_TRANSITION)
def cancel_job(job_id: str, caller: Caller = SUBMIT, api: ApiState = STATE) -> JobProgress:
    """Cancel: documents not yet claimed are skipped; 409 when the job already finished."""
    own(api, job_id, caller)
    return service.cancel_job(api.settings, job_id)


@router.get("/jobs/{job_id}/failures", responses=ONE_JOB)
def failures(job_id: str, reason: str | None = Query(None, max_length=40, pattern=fields.SINGLE_LINE_PATTERN,
                                                     description="only documents failed with this reason"),
             cursor: str | None = CURSOR, limit: int = Query(100, ge=1, le=1000),
             caller: Caller = READ, api: ApiState = STATE) -> dict[str, Any]:
    """Failed documents (id, line, reason, message, attempts) in corpus order, keyset-paged,
    with the number of failed documents per reason."""
    own(api, job_id, caller)
    return service.failed_documents(api.settings, job_id, reason=reason, cursor=cursor_value(cursor), limit=limit)


@router.delete("/jobs/{job_id}", responses=_TRANSITION)
def purge_job(job_id: str, caller: Caller = SUBMIT, api: ApiState = STATE) -> dict[str, Any]:
    """Delete a finished job with its documents and entities (in short batches); 409 while it
    runs (cancel it first)."""
    own(api, job_id, caller)
    return service.purge(api.settings, job_id=job_id)[0]


@router.post("/jobs/{job_id}/retry", responses=_TRANSITION)
def retry_job(job_id: str, reason: str | None = Query(None, max_length=40, pattern=fields.SINGLE_LINE_PATTERN,
                                                     description="only documents failed with this reason"),
              caller: Caller = SUBMIT, api: ApiState = STATE) -> RetryResult:
    """Re-queue the job's failed documents (not those rejected as bad input; only `reason`'s when given)."""
    own(api, job_id, caller)
    return service.retry_failed(api.settings, job_id, reason=reason or None)


@router.post("/jobs/{job_id}/pause", responses=_TRANSITION)
def pause_job(job_id: str, caller: Caller = SUBMIT, api: ApiState = STATE) -> JobProgress:
    """Pause: no new batch is handed out; running documents finish; 409 when the job already finished."""
    own(api, job_id, caller)
    service.pause(api.settings, job_id=job_id, paused=True)
    return service.job_status(api.settings, job_id)


@router.post("/jobs/{job_id}/resume", responses=_TRANSITION)
def resume_job(job_id: str, caller: Caller = SUBMIT, api: ApiState = STATE) -> JobProgress:
    """Resume a paused job: its batches are handed out again."""
    own(api, job_id, caller)
    service.pause(api.settings, job_id=job_id, paused=False)
    return service.job_status(api.settings, job_id)


@router.get("/jobs/{job_id}/throughput", responses=ONE_JOB)
def throughput(job_id: str, buckets: int = Query(40, ge=2, le=500), caller: Caller = READ,
               api: ApiState = STATE) -> dict[str, Any]:
    """Completed documents and characters per second over the job's running time."""
    own(api, job_id, caller)
    return service.throughput(api.settings, job_id, buckets=buckets)
