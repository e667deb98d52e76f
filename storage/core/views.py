"""The service boundary's shapes: what status, listing, entity and export calls return.

TypedDicts rather than dataclasses: these values ARE the JSON of the REST API, ``shiti ... --json``
and the export file, so they stay plain dicts end to end (no conversion layer), while mypy checks
every key and FastAPI documents each response in OpenAPI from the return annotations.

One vocabulary: a job or a document has a ``state``; a document is named by ``doc_id`` (the id
given at submit), a job by ``job_id``.
"""

from __future__ import annotations

# typing_extensions: pydantic (FastAPI) reads TypedDicts only from there on Python < 3.12.
from datetime import UTC, datetime
from typing import Any

from typing_extensions import NotRequired, TypedDict


def iso_time(ts: float | None) -> str | None:
    """An epoch timestamp as these views show it: ISO 8601 UTC to the second (None stays None)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


class SubmitView(TypedDict):
    """What a submit answers: the job, whether this call created it, documents stored (every
    record read has a row), of those rejected at ingest, and the records this call read."""

    job_id: str
    created: bool
    documents: int
    rejected: int
    lines: int
    reused: int  # of the documents, done at once with an identical earlier document's entities (incremental)


class FailureView(TypedDict):
    doc_id: str
    reason: str | None
    error: str | None


class JobSummary(TypedDict):
    """A job in a listing."""

    job_id: str
    name: str | None
    state: str
    total: int
    done: int
    failed: int
    cancelled: int
    submitted_at: str | None
    finished_at: str | None
    model: str | None  # provenance: the model that tags the job and its content hash
    model_hash: str | None
    fold: str | None  # and the character fold applied before the model (storage/core/fold.py)
    dictionary: str | None  # and the user dictionary applied after it (name@version) and its hash
    dictionary_hash: str | None
    priority: int


class NotifyView(TypedDict):
    """The job's completion webhook: its latest event's delivery (``state`` pending, delivered or
    given_up; no event yet while the job runs)."""

    url: str
    state: str
    attempts: int
    last_error: str | None
    last_attempt_at: str | None
    delivered_at: str | None
    event_id: str | None


class JobProgress(JobSummary):
    """A job's status: the summary plus in-flight counts, characters, rates over its running
    time, ETA and first failures."""

    pending: int
    processing: int
    incremental: bool  # reuses identical earlier documents' entities
    reused: int  # documents done that way (no worker)
    paused: bool  # no new batch is handed out until it is resumed
    chars_total: int
    chars_done: int
    docs_per_second: float
    chars_per_second: float
    eta_seconds: float | None
    started_at: str | None
    failures: list[FailureView]
    rerun_of: str | None
    gold_of: str | None  # this job holds annotators' corrections of that job's documents
    workers: int | None  # live workers serving the job's model (None: the broker did not answer)
    waiting_for: str | None  # why an open job cannot progress now ("a worker serving NAME"), else None
    notify: NotifyView | None
    error: str | None  # why the job's ingest failed (and how many documents it stored), else None


class RetryResult(JobProgress):
    requeued: int


class JobPage(TypedDict):
    """One page of jobs, newest first; running ones carry their live progress fields."""

    items: list[JobSummary | JobProgress]
    next_cursor: str | None


class EntityView(TypedDict):
    """An entity in a job-wide listing."""

    doc_id: str
    start: int
    end: int
    label: str
    text: str
    score: float
    source: str  # model | dict | both (storage.core.domain.SOURCES)


class EntityPage(TypedDict):
    items: list[EntityView]
    next_cursor: str | None


class FormView(TypedDict):
    """One surface text of a canonical entity and how often it is mentioned."""

    text: str
    mentions: int


class GroupView(TypedDict):
    """A canonical entity of a job (storage/core/canon.py): its rank (1 = in the most documents),
    type, display name (the dictionary entry's text, else the commonest form), canonical form,
    mention and document counts, and every surface form."""

    rank: int
    label: str
    name: str
    canon: str
    mentions: int
    documents: int
    forms: list[FormView]


class ViewMeta(TypedDict):
    """What a corpus view covers: ``complete`` when the job is finished and the view is its whole
    content; else it was grouped at ``grouped_at`` over ``documents`` done documents."""

    complete: bool
    grouped_at: str | None
    documents: int


class GroupPage(ViewMeta):
    items: list[GroupView]
    next_cursor: str | None


class PairEnd(TypedDict):
    rank: int
    label: str
    name: str
    documents: int


class PairView(TypedDict):
    """Two canonical entities mentioned in the same documents: how many, and Jaccard (documents
    together / documents mentioning either)."""

    a: PairEnd
    b: PairEnd
    documents: int
    jaccard: float


class PairPage(ViewMeta):
    items: list[PairView]


class MentionSpan(TypedDict):
    start: int
    end: int
    text: str


class MentioningDocument(TypedDict):
    """A document mentioning a canonical entity, with every mention of it (code-point offsets)."""

    doc_id: str
    mentions: list[MentionSpan]
    snippet: str  # the text around the first mention
    snippet_start: int  # where the snippet starts in the document


class MentionPage(ViewMeta):
    group: GroupView
    items: list[MentioningDocument]
    next_cursor: str | None


class TopEntity(TypedDict):
    label: str
    text: str
    count: int


class TopEntities(TypedDict):
    items: list[TopEntity]


class SpanView(TypedDict):
    """An entity inside its document: end-exclusive code-point offsets into the text."""

    start: int
    end: int
    label: str
    text: str
    score: float
    source: str  # model | dict | both (storage.core.domain.SOURCES)


class DocumentView(TypedDict):
    doc_id: str
    text: str
    state: str
    reason: str | None
    error: str | None
    attempts: int
    line: int | None
    entities: list[SpanView]


class ExportRecord(TypedDict):
    """One line of ``shiti export`` / ``GET /jobs/{id}/export``."""

    doc_id: str
    state: str
    length: int
    entities: list[SpanView]
    reason: NotRequired[str]
    text: NotRequired[str]  # the document's text, for the annotation formats
    model: str | None
    model_hash: str | None
    fold: str | None
    dictionary: str | None
    dictionary_hash: str | None


class DictionaryView(TypedDict):
    """One stored dictionary version (``shiti dict list/show``, ``GET /dicts``)."""

    name: str
    version: int
    dictionary: str  # name@version
    content_hash: str
    entries: int
    types: list[str]
    created_at: str
    versions: NotRequired[list[dict[str, Any]]]
    terms: NotRequired[list[dict[str, Any]]]


class DiffItem(TypedDict):
    """One entity span that differs between two jobs (``label_b`` only for a type change)."""

    doc_id: str
    start: int
    end: int
    text: str
    label: str
    label_b: NotRequired[str]


class DiffCounts(TypedDict):
    only_a: int
    only_b: int
    changed: int  # spans whose type changed, counted under their type in A


class DiffView(TypedDict):
    """``shiti diff A B``: entities only in A, only in B, and same span with another type, matched
    by document id (the jobs must hold the same documents); lists cut at ``limit`` each."""

    job_a: str
    job_b: str
    model_a: str | None
    model_b: str | None
    documents: int
    counts: DiffCounts
    by_label: dict[str, DiffCounts]
    only_a: list[DiffItem]
    only_b: list[DiffItem]
    changed: list[DiffItem]
    truncated: bool
    complete: bool  # both jobs finished: otherwise untagged documents show as differences


class ModelView(TypedDict):
    """A model a job may name (``GET /models``): from this host's models directory, or announced
    by live workers (``workers`` > 0)."""

    name: str
    content_hash: str
    labels: list[str]
    size_bytes: int | None
    card: str
    ok: bool
    error: str | None
    workers: int


class ExtractResult(TypedDict):
    job_id: str
    text: str
    state: str
    reason: str | None
    entities: list[SpanView]


class Presence(TypedDict):
    """One live worker's announcement on the broker (``storage.broker.presence``)."""

    node: str
    model: str
    content_hash: str
    labels: list[str]
