"""Job and document states, their allowed transitions, and plain value objects."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobStatus(StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class DocumentStatus(StrEnum):
    PENDING = "pending"  # stored, not yet handed to the broker
    QUEUED = "queued"  # its id was published in a batch
    PROCESSING = "processing"  # claimed under a lease
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Reason(StrEnum):
    """Why a document ended the way it did (``document.reason``)."""

    EMPTY = "empty"  # done, 0 entities
    DECODE_ERROR = "decode_error"
    SURROGATE = "surrogate"
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"  # a corpus record that could not be parsed
    MISSING_FIELD = "missing_field"
    BINARY = "binary"
    DUPLICATE_ID = "duplicate_id"  # a second record with an id already in the upload
    BAD_ID = "bad_id"  # a document id that cannot be stored (NUL, lone surrogate, too long)
    CANCELLED = "cancelled"
    INGEST_FAILED = "ingest_failed"  # stored by an ingest that failed before the job was complete
    ERROR = "error"  # the model raised
    POISON = "poison"  # attempts exhausted (crashes, kills, hangs)
    TIMEOUT = "timeout"
    REUSED = "reused"  # done without a worker: an identical earlier document's entities (incremental jobs)


#: Reasons that describe bad input: retrying the document cannot help.
INPUT_REASONS = frozenset(
    {Reason.DECODE_ERROR, Reason.SURROGATE, Reason.TOO_LARGE, Reason.MALFORMED,
     Reason.MISSING_FIELD, Reason.BINARY, Reason.DUPLICATE_ID, Reason.BAD_ID}
)

JOB_TERMINAL = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED, JobStatus.CANCELLED}
)
DOC_TERMINAL = frozenset({DocumentStatus.DONE, DocumentStatus.FAILED, DocumentStatus.CANCELLED})

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # A job whose documents were all decided at ingest (all empty or rejected) ends at once.
    JobStatus.SUBMITTED: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.CANCELLED} | JOB_TERMINAL
    ),
    JobStatus.RUNNING: frozenset({JobStatus.CANCELLING} | JOB_TERMINAL),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED}),
    # retry_failed re-opens a finished job that has failed documents.
    JobStatus.PARTIALLY_FAILED: frozenset({JobStatus.RUNNING}),
    # ... and a resubmit with its client token resumes a job whose ingest failed (repo.create_job).
    JobStatus.FAILED: frozenset({JobStatus.RUNNING, JobStatus.SUBMITTED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

DOC_TRANSITIONS: dict[DocumentStatus, frozenset[DocumentStatus]] = {
    # A claim past max_attempts fails the document as poison instead of processing it.
    # PENDING -> DONE: an incremental job reuses an identical earlier document's entities.
    DocumentStatus.PENDING: frozenset(
        {DocumentStatus.QUEUED, DocumentStatus.PROCESSING, DocumentStatus.DONE, DocumentStatus.FAILED,
         DocumentStatus.CANCELLED}
    ),
    DocumentStatus.QUEUED: frozenset(
        {DocumentStatus.PENDING, DocumentStatus.PROCESSING, DocumentStatus.FAILED, DocumentStatus.CANCELLED}
    ),
    DocumentStatus.PROCESSING: frozenset(
        {DocumentStatus.DONE, DocumentStatus.FAILED, DocumentStatus.PENDING,
         DocumentStatus.PROCESSING, DocumentStatus.CANCELLED}
    ),
    DocumentStatus.FAILED: frozenset({DocumentStatus.PENDING}),
    DocumentStatus.DONE: frozenset(),
    DocumentStatus.CANCELLED: frozenset(),
}


# The states each repository operation starts from (``storage/sql/repo.py`` uses only these in its
# conditional UPDATEs; tests/component/test_state_machine.py checks that every operation moves
# jobs and documents along the edges above, and that finished jobs end in final_job_status).

#: Jobs not terminal yet: counted, finished and cancellable.
JOB_OPEN = frozenset(JobStatus) - JOB_TERMINAL
#: Jobs whose documents may be dispatched and claimed (a cancelling job's claims cancel instead).
JOB_ACCEPTS_WORK = frozenset({JobStatus.SUBMITTED, JobStatus.RUNNING})
#: Jobs whose failed documents ``retry`` may re-open.
JOB_RETRYABLE = frozenset({JobStatus.RUNNING, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED})
#: Documents a claim (or a cancel) may take without a lease check.
DOC_CLAIMABLE = frozenset({DocumentStatus.PENDING, DocumentStatus.QUEUED})
#: Documents not terminal yet.
DOC_UNFINISHED = frozenset(DocumentStatus) - DOC_TERMINAL


def final_job_status(*, done: int, failed: int, cancelling: bool) -> JobStatus:
    """The terminal state of a job whose documents are all terminal."""
    if cancelling:
        return JobStatus.CANCELLED
    if failed == 0:
        return JobStatus.SUCCEEDED
    return JobStatus.FAILED if done == 0 else JobStatus.PARTIALLY_FAILED


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity; ``start``/``end`` are end-exclusive code-point offsets into the stored text.
    ``source``: who found it: the model, the job's dictionary, or both agreeing (``SOURCES``)."""

    start: int
    end: int
    label: str
    text: str
    score: float
    source: str = "model"


#: Where an entity comes from (``Entity.source``, the entity table's ``source`` column).
SOURCE_MODEL, SOURCE_DICT, SOURCE_BOTH = "model", "dict", "both"
#: An annotator's correction (the entities of a corrections job, storage/sql/gold.py).
SOURCE_GOLD = "gold"
SOURCES = (SOURCE_MODEL, SOURCE_DICT, SOURCE_BOTH, SOURCE_GOLD)


@dataclass(frozen=True, slots=True)
class ClaimedDocument:
    """A document leased to one worker for one attempt."""

    id: int
    ext_id: str
    text: str
    n_chars: int
    attempts: int
    lease_token: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker learned about one claimed document."""

    document_id: int
    n_chars: int = 0
    entities: tuple[Entity, ...] = ()
    error: str | None = None  # set -> the document failed
    reason: str | None = None
    cancelled: bool = False  # its job was cancelled while it ran: it ends cancelled, no entities
