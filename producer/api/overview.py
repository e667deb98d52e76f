"""Routes of the corpus view: a job's canonical entities, the strongest co-occurring pairs and
every document mentioning an entity or its aliases (docs/corpus-view.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from producer import overview
from producer.api import errors as api_errors
from producer.api.auth import Caller
from producer.api.deps import CURSOR, READ, STATE, ApiState, filter_query, filter_value, own
from storage.core.views import GroupPage, MentionPage, PairPage

router = APIRouter(tags=["corpus view"])
# 409: a running job too large to group on request (its view is built when it finishes).
VIEW = api_errors.responses(404, 409)
TYPE: Any = filter_query("entity label, e.g. PER, LOC, ORG")


@router.get("/jobs/{job_id}/groups", responses=VIEW)
def groups(job_id: str, type: str | None = TYPE,
           name: str | None = filter_query("a name in any spelling (Traditional, full-width) or a dictionary "
                                           "alias: the canonical entities it belongs to"),
           cursor: str | None = CURSOR, limit: int = Query(50, ge=1, le=1000),
           caller: Caller = READ, api: ApiState = STATE) -> GroupPage:
    """Canonical entities of a job (spellings folded, dictionary aliases merged) with mention and
    document counts and their surface forms, most documents first."""
    own(api, job_id, caller)
    return overview.entity_groups(api.settings, job_id, label=filter_value("type", type),
                                  name=filter_value("name", name), cursor=cursor, limit=limit)


@router.get("/jobs/{job_id}/cooccur", responses=VIEW)
def cooccur(job_id: str, with_name: str | None = Query(None, alias="with", max_length=200,
                                                       description="only the pairs of this entity (any spelling)"),
            type: str | None = TYPE,
            by: str = Query("documents", pattern="^(documents|jaccard)$",
                            description="documents: most documents together; jaccard: together / either"),
            limit: int = Query(50, ge=1, le=1000), caller: Caller = READ, api: ApiState = STATE) -> PairPage:
    """The strongest pairs of canonical entities mentioned in the same documents."""
    own(api, job_id, caller)
    return overview.cooccurrence(api.settings, job_id, with_name=filter_value("with", with_name),
                                 label=filter_value("type", type), by=by, limit=limit)


@router.get("/jobs/{job_id}/mentions", responses=VIEW)
def mentions(job_id: str, name: str = Query(..., min_length=1, max_length=200,
                                            description="the entity, in any spelling or a dictionary alias"),
             type: str | None = TYPE, cursor: str | None = CURSOR, limit: int = Query(50, ge=1, le=1000),
             caller: Caller = READ, api: ApiState = STATE) -> MentionPage:
    """Every document mentioning an entity or any of its spellings and aliases, each once with
    its mentions (code-point offsets)."""
    own(api, job_id, caller)
    checked = filter_value("name", name)
    assert checked is not None
    return overview.mentioning(api.settings, job_id, checked, label=filter_value("type", type), cursor=cursor,
                               limit=limit)
