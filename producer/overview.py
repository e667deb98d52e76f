"""The corpus's entities at a glance, for every front end (CLI, API, page): canonical entities
with mention and document counts, the strongest co-occurring pairs, and every document mentioning
an entity or its aliases. The view is built and stored by ``storage/sql/groups.py``."""

from __future__ import annotations

from storage.core.errors import NotFound, PermanentError
from storage.core.settings import Settings
from storage.core.views import GroupPage, GroupView, MentionPage, PairPage, ViewMeta, iso_time
from storage.sql import groups
from storage.sql.db import get_database

BY = ("documents", "jaccard")


def _meta(state: groups.ViewState) -> ViewMeta:
    return {"complete": state.complete, "grouped_at": iso_time(state.grouped_at), "documents": state.documents}


def _cursor(cursor: str | None) -> int:
    """A page cursor (a rank or an entity row id) as an int; 0: the first page."""
    if cursor in (None, ""):
        return 0
    assert cursor is not None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 19 and int(cursor) < 2**63):
        raise PermanentError(f"cursor {cursor[:40]!r} is not one this listing returned")
    return int(cursor)


def entity_groups(settings: Settings, job_id: str, *, label: str | None = None, name: str | None = None,
                  cursor: str | None = None, limit: int = 50) -> GroupPage:
    """A job's canonical entities, most documents first (``label``: of one type), a page at a
    time; with ``name``, the entities it is a spelling or alias of instead.

    Raises:
        NotFound: no such job. InvalidTransition: a large running job, grouped when it finishes.
    """
    db = get_database(settings)
    state = groups.ensure(db, job_id)
    if name is not None:
        return {**_meta(state), "items": groups.find_groups(db, job_id, name, label=label),  # type: ignore[typeddict-item]
                "next_cursor": None}
    items = groups.group_page(db, job_id, label=label, after=_cursor(cursor), limit=limit)
    return {**_meta(state), "items": items,  # type: ignore[typeddict-item]
            "next_cursor": str(items[-1]["rank"]) if len(items) == limit else None}


def find_group(settings: Settings, job_id: str, name: str, *, label: str | None = None) -> GroupView:
    """The best-ranked canonical entity ``name`` is a spelling or alias of.

    Raises:
        NotFound: the job mentions no such entity.
    """
    found = groups.find_groups(get_database(settings), job_id, name, label=label)
    if not found:
        of = f" of type {label}" if label else ""
        raise NotFound(f"job {job_id} mentions no entity {name[:60]!r}{of} (any spelling or alias)")
    return found[0]  # type: ignore[return-value]


def cooccurrence(settings: Settings, job_id: str, *, with_name: str | None = None, label: str | None = None,
                 by: str = "documents", limit: int = 50) -> PairPage:
    """The strongest pairs of canonical entities mentioned in the same documents (those of one
    entity with ``with_name``), by documents together or by Jaccard."""
    if by not in BY:
        raise PermanentError(f"by {by[:40]!r} is neither documents nor jaccard")
    db = get_database(settings)
    state = groups.ensure(db, job_id)
    rank = find_group(settings, job_id, with_name, label=label)["rank"] if with_name is not None else None
    return {**_meta(state), "items": groups.pairs(db, job_id, rank=rank, by=by, limit=limit)}  # type: ignore[typeddict-item]


def mentioning(settings: Settings, job_id: str, name: str, *, label: str | None = None, cursor: str | None = None,
               limit: int = 50) -> MentionPage:
    """Every document mentioning ``name`` or any spelling or alias of it, each once with its
    mentions, a page at a time."""
    db = get_database(settings)
    state = groups.ensure(db, job_id)
    group = find_group(settings, job_id, name, label=label)
    items, after = groups.mention_page(db, job_id, group["rank"], after=_cursor(cursor), limit=limit)
    return {**_meta(state), "group": group, "items": items,  # type: ignore[typeddict-item]
            "next_cursor": str(after) if after is not None else None}

