"""Routes that read entities: a job's entities and top strings, one document, the export stream,
the diff of two jobs, and ``POST /extract`` (one text tagged while the caller waits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from producer import fields, review, service
from producer.api import errors as api_errors
from producer.api.auth import Caller
from producer.api.deps import CURSOR, READ, STATE, SUBMIT, ApiState, cursor_value, filter_query, filter_value, \
    job_options, own
from producer.api.errors import ApiError
from producer.api.jobs import ONE_JOB
from storage.core.errors import JobWaitTimeout, NotFound
from storage.core.views import DiffView, DocumentView, EntityPage, ExtractResult, TopEntities

EXTRACT_DOC_ID = "1"

router = APIRouter(tags=["entities"])
MIN_SCORE: Any = Query(None, ge=0, le=1, allow_inf_nan=False,
                       description="only entities scored at least this (the probability the entity is right)")


class ExtractRequest(BaseModel):
    """One text to tag."""

    text: str = Field(..., description="the text; offsets in the answer index its code points",
                      examples=["张伟在北京大学读书，毕业后加入了阿里巴巴。"])
    timeout: float | None = Field(None, ge=1, le=600, description="seconds to wait for a worker")
    model: str | None = Field(None, max_length=fields.MAX_MODEL, pattern=fields.SINGLE_LINE_PATTERN,
                              description="model name (`GET /models`); default the server's SHITI_MODEL")
    fold: StrictBool = Field(True, description="fold Traditional characters to Simplified before the model")
    dictionary: str | None = Field(None, alias="dict", max_length=120, pattern=fields.SINGLE_LINE_PATTERN,
                                   description="user dictionary applied after the model: NAME or NAME@VERSION")


@router.get("/jobs/{job_id}/diff/{other_id}", responses=ONE_JOB)
def diff_jobs(job_id: str, other_id: str, limit: int = Query(100, ge=0, le=10000),
              caller: Caller = READ, api: ApiState = STATE) -> DiffView:
    """Entities only in `job_id` (A), only in `other_id` (B), and whose type changed, with
    counts per type; the jobs must hold the same documents (e.g. a job and its rerun)."""
    own(api, job_id, caller)
    own(api, other_id, caller)
    return service.diff_jobs(api.settings, job_id, other_id, limit=limit)


@router.get("/jobs/{job_id}/entities", responses=ONE_JOB)
def entities(job_id: str,
             type: str | None = filter_query("entity label, e.g. PER, LOC, ORG (`GET /models`)"),
             text: str | None = filter_query("exact entity text"),
             doc: str | None = filter_query("document id"),
             min_score: float | None = MIN_SCORE,
             cursor: str | None = CURSOR, limit: int = Query(100, ge=1, le=1000),
             caller: Caller = READ, api: ApiState = STATE) -> EntityPage:
    """Entities of a job in a stable order (keyset pagination: pass `next_cursor` back)."""
    own(api, job_id, caller)
    return service.find_entities(api.settings, job_id, label=filter_value("type", type),
                                 text=filter_value("text", text), doc=filter_value("doc", doc),
                                 min_score=min_score, cursor=cursor_value(cursor), limit=limit)


@router.get("/jobs/{job_id}/entities/top", responses=ONE_JOB)
def top(job_id: str, type: str | None = filter_query("entity label"), limit: int = Query(20, ge=1, le=500),
        caller: Caller = READ, api: ApiState = STATE) -> TopEntities:
    """Most frequent entity strings, `limit` per label, most frequent first."""
    own(api, job_id, caller)
    items = service.top_entities(api.settings, job_id, label=filter_value("type", type), limit=limit)
    return {"items": sorted(items, key=lambda e: (-e["count"], e["label"], e["text"]))}


@router.get("/jobs/{job_id}/documents/{doc_id:path}", responses=ONE_JOB)
def document(job_id: str, doc_id: str, caller: Caller = READ, api: ApiState = STATE) -> DocumentView:
    """One document: its stored text, state and entities (end-exclusive code-point offsets)."""
    own(api, job_id, caller)
    if fields.DOC_ID.problem(doc_id) is not None:  # no stored document has such an id
        raise NotFound(f"no document {doc_id[:40]!r} in job {job_id}")
    return service.get_document(api.settings, job_id, doc_id)


FORMAT: Any = Query("jsonl", description="jsonl (one record per document), or an annotation tool's: label-studio "
                                         "(tasks with predictions), doccano (JSONL), conll or bio (one character "
                                         "per line)", pattern="^(jsonl|label-studio|doccano|conll|bio)$")
OFFSETS: Any = Query(None, pattern="^(codepoint|utf16)$",
                     description="how the tool counts characters (default: its own; label-studio and doccano)")


def stream_export(job_id: str, fmt: str, pieces: Iterator[str], *, stem: str = "shiti") -> StreamingResponse:
    """An export's pieces as a download in ``fmt``."""
    return StreamingResponse((p.encode("utf-8") for p in pieces), media_type=review.MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{stem}-{job_id}.{review.EXTENSIONS[fmt]}"'})


@router.get("/jobs/{job_id}/export", responses=ONE_JOB, response_class=StreamingResponse)
def export(job_id: str, min_score: float | None = MIN_SCORE, format: str = FORMAT, offsets: str | None = OFFSETS,
           caller: Caller = READ, api: ApiState = STATE) -> StreamingResponse:
    """Every document's entities, streamed: JSON Lines (one record per document), or the done
    documents in an annotation tool's format (docs/corrections.md)."""
    own(api, job_id, caller)
    # NotFound and a bad format or offsets answer before the stream starts
    pieces = review.export(api.settings, job_id, format, min_score=min_score, offsets=offsets)
    return stream_export(job_id, format, pieces)


@router.post("/extract", responses=api_errors.responses(504))
async def extract(body: ExtractRequest, caller: Caller = SUBMIT, api: ApiState = STATE) -> ExtractResult:
    """Tag one text: it becomes a one-document job, answered when a worker has done it."""
    settings = api.settings
    await run_in_threadpool(api.auth.check_quota, caller, 1, len(body.text))
    job = await run_in_threadpool(job_options, settings, {"model": body.model, "fold": body.fold,
                                                          "dict": body.dictionary}, caller)
    result = await run_in_threadpool(service.submit_corpus, settings,
                                     [{"id": EXTRACT_DOC_ID, "text": body.text}],
                                     name=_extract_name(body.text), owner=caller.owner, options=job,
                                     max_doc_chars=settings.max_api_doc_chars)
    timeout = body.timeout or api.extract_timeout
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


def _extract_name(text: str) -> str:
    snippet = " ".join(text.split())
    return fields.safe_name("extract: " + (snippet[:24] + "…" if len(snippet) > 24 else snippet)) or "extract"
