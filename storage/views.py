"""The service boundary's shapes: what status, listing, entity and export calls return.

TypedDicts rather than dataclasses: these values ARE the JSON of the REST API, ``shiti ... --json``
and the export file, so they stay plain dicts end to end (no conversion layer), while mypy checks
every key and FastAPI documents each response in OpenAPI from the return annotations.

One vocabulary: a job or a document has a ``state``; a document is named by ``doc_id`` (the id
given at submit), a job by ``job_id``.
"""

from __future__ import annotations

# typing_extensions: pydantic (FastAPI) reads TypedDicts only from there on Python < 3.12.
from typing_extensions import NotRequired, TypedDict


class SubmitView(TypedDict):
    """What a submit answers: the job, whether this call created it, documents stored and rejected."""

    job_id: str
    created: bool
    documents: int
    rejected: int


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


class JobProgress(JobSummary):
    """A job's status: the summary plus in-flight counts, characters, rates over its running
    time, ETA and first failures."""

    pending: int
    processing: int
    chars_total: int
    chars_done: int
    docs_per_second: float
    chars_per_second: float
    eta_seconds: float | None
    started_at: str | None
    failures: list[FailureView]


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


class EntityPage(TypedDict):
    items: list[EntityView]
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


class ExtractResult(TypedDict):
    job_id: str
    text: str
    state: str
    reason: str | None
    entities: list[SpanView]
