"""Routes of the correction loop: the documents worth correcting first, a job's Label Studio
labeling config, and annotators' corrections brought back as gold (docs/corrections.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from producer import review
from producer.annotation.spans import CorrectionError
from producer.api import errors as api_errors
from producer.api.auth import Caller
from producer.api.deps import READ, STATE, SUBMIT, ApiState, own
from producer.api.entities import OFFSETS, stream_export
from producer.api.errors import ApiError
from producer.api.jobs import ONE_JOB
from producer.api.upload import read_body
from producer.corrections import MAX_BYTES, import_corrections

router = APIRouter(tags=["corrections"])


class XmlResponse(PlainTextResponse):
    """An XML document (the OpenAPI document states its media type)."""

    media_type = "application/xml"


@router.get("/jobs/{job_id}/sample", responses=ONE_JOB, response_class=StreamingResponse)
def sample(job_id: str, n: int = Query(100, ge=1, le=review.MAX_SAMPLE),
           by: str = Query("uncertainty", pattern="^(uncertainty|disagreement|random)$",
                           description="uncertainty: least certain entities first; disagreement: most differences "
                                       "from `against`; random: seeded"),
           against: str | None = Query(None, max_length=32, pattern="^[0-9a-f]{32}$",
                                       description="the job to disagree with"),
           seed: int = Query(0, ge=0, le=2**31 - 1), include_corrected: bool = False,
           format: str = Query("label-studio", pattern="^(label-studio|doccano|conll|bio)$"),
           offsets: str | None = OFFSETS, caller: Caller = READ, api: ApiState = STATE) -> StreamingResponse:
    """The `n` done documents most worth correcting, best first, in an annotation tool's format."""
    own(api, job_id, caller)
    if against is not None:
        own(api, against, caller)
    picks = review.sample(api.settings, job_id, n=n, by=by, against=against, seed=seed,
                          include_corrected=include_corrected)
    pieces = review.export(api.settings, job_id, format, offsets=offsets, rows=[p.row_id for p in picks])
    return stream_export(job_id, format, pieces, stem="shiti-sample")


@router.get("/jobs/{job_id}/label-config", response_class=Response, responses={
    **ONE_JOB, 200: {"description": "the labeling config", "content": {"application/xml": {"schema": {"type": "string"}}}}})
def label_config(job_id: str, caller: Caller = READ, api: ApiState = STATE) -> XmlResponse:
    """The Label Studio labeling config the job's `label-studio` tasks go with."""
    own(api, job_id, caller)
    return XmlResponse(review.label_config(api.settings, job_id))


@router.post("/jobs/{job_id}/corrections", status_code=201, responses=api_errors.responses(404, 413),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                 "application/x-ndjson": {"schema": {"type": "string"}},
                 "text/plain": {"schema": {"type": "string"}}}}})
async def corrections(request: Request, job_id: str,
                      tool: str = Query("label-studio", alias="from", pattern="^(label-studio|doccano|conll)$",
                                        description="the annotation tool the body is an export of"),
                      offsets: str | None = OFFSETS, accept_predictions: bool = False,
                      caller: Caller = SUBMIT, api: ApiState = STATE) -> dict[str, Any]:
    """Store an annotation tool's export (the body) as corrections of the job's documents: a new
    corrections job (`gold_job`) that `diff` compares with. A task that cannot be used answers 422
    with its `task` and nothing is stored."""
    own(api, job_id, caller)
    raw = await read_body(request, limit=MAX_BYTES + 1)
    try:
        done = await run_in_threadpool(import_corrections, api.settings, raw, tool=tool, job_id=job_id,
                                       offsets=offsets, accept_predictions=accept_predictions, owner=caller.owner,
                                       source_name=f"POST /jobs/{job_id}/corrections")
    except CorrectionError as exc:
        raise ApiError("invalid_input", str(exc), task=exc.task) from None
    return done.view()
