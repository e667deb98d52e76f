"""Routes for user dictionaries: store a version, list them, show one (``producer.dictionaries``).

A dictionary is owned like a job: a key sees and uses its own, an admin key every one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from producer import dictionaries
from producer.api import errors as api_errors
from producer.api.auth import Caller
from producer.api.deps import STATE, SUBMIT, ApiState
from producer.api.errors import ApiError
from producer.api.upload import read_body
from storage.core.lexicon import MAX_BYTES, NAME_PATTERN, LexiconError
from storage.core.views import DictionaryView

router = APIRouter(tags=["dictionaries"])
NAME: Any = Query(..., max_length=100, pattern=NAME_PATTERN, description="dictionary name")
_TSV_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/tab-separated-values": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "TSV lines text<TAB>TYPE[<TAB>force|block[<TAB>aliases]]"}}}},
        },
    }
}


@router.post("/dicts", status_code=201, openapi_extra=_TSV_DOC, responses=api_errors.responses(413, 415))
async def create(request: Request, name: str = NAME, caller: Caller = SUBMIT,
                 api: ApiState = STATE) -> JSONResponse:
    """Store a dictionary file as the next version of `name` (the body: the TSV, or a multipart
    `file`). A bad line answers 422 with its `line` number and nothing is stored."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4, max_part_size=MAX_BYTES + 1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError("invalid_input", "multipart upload needs a file in the 'file' field")
            raw = await upload.read(MAX_BYTES + 1)
    elif ctype in ("text/tab-separated-values", "text/plain", "text/tsv"):
        raw = await read_body(request, limit=MAX_BYTES + 1)
    else:
        raise ApiError("unsupported_media_type", "send the TSV as text/tab-separated-values, or multipart/form-data "
                       "with a 'file' field")
    try:
        made = await run_in_threadpool(dictionaries.create_dictionary, api.settings, name, raw,
                                       owner=caller.owner)
    except LexiconError as exc:
        raise ApiError("invalid_input", str(exc), line=exc.line) from None
    return JSONResponse(made, status_code=201, headers={"Location": f"/dicts/{made['name']}"})


@router.get("/dicts")
def list_dicts(caller: Caller = SUBMIT, api: ApiState = STATE) -> list[DictionaryView]:
    """The newest version of every dictionary the caller may use."""
    return dictionaries.list_dictionaries(api.settings, owner=caller.owner, sees_all=caller.sees_all)


@router.get("/dicts/{name}", responses=api_errors.responses(404))
def show(name: str, version: int | None = Query(None, ge=1, le=2**31 - 1),
         limit: int = Query(1000, ge=0, le=100_000, description="entries listed"),
         caller: Caller = SUBMIT, api: ApiState = STATE) -> DictionaryView:
    """One dictionary version (default: the newest): its hash, its versions and its entries."""
    return dictionaries.show_dictionary(api.settings, name, version, owner=caller.owner,
                                        sees_all=caller.sees_all, limit=limit)
