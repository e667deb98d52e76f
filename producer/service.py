"""Everything a user (CLI, REST API, web page) calls. Never imports ``worker`` or torch.

Every function takes the ``Settings`` explicitly; engines are cached per URL and process.
Unknown job or document ids raise ``storage.core.errors.NotFound``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producer import dictionaries, fields
from producer.corpus import Record, read_corpus
from producer.validation import check_text, rejected
from storage.sql import diff, queries, repo, retention
from storage.sql.db import get_database
from storage.broker.dispatch import dispatch
from storage.core.domain import INPUT_REASONS, JOB_OPEN, JOB_TERMINAL, DocumentStatus, JobStatus, Reason
from storage.core.errors import InvalidTransition, JobWaitTimeout, NotFound, PermanentError, ShitiError
from storage.catalog import UnknownModel, known_names, model_views, resolve
from storage.broker.presence import live_or_none
from storage.core.fold import fold_id
from storage.core.lexicon import DictionaryRef
from storage.core.recipe import recipe
from storage.core.settings import Settings
from storage.core.views import (
    iso_time,
    DiffView,
    DocumentView,
    EntityPage,
    ExportRecord,
    JobPage,
    JobProgress,
    JobSummary,
    ModelView,
    NotifyView,
    RetryResult,
    TopEntity,
)
from storage.sql.outbox import delivery_status
from storage.webhook.http import check_url, redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitResult:
    """``documents``: stored in the job; ``rejected``: of those, failed at ingest (bad input,
    duplicate or unstorable ids)."""

    job_id: str
    created: bool
    documents: int
    rejected: int
    dispatched: bool = True
    lines: int = 0  # records this call read (each has a row: stored or rejected)
    reused: int = 0  # of those, done at once with an identical earlier document's entities


@dataclass(frozen=True)
class JobOptions:
    """How a job runs, checked before anything is stored: its model (name and content hash), its
    weight in the model's fair share, its completion webhook, the character fold applied
    before the model (``storage.core.fold.fold_id()``; None: none) and the user dictionary applied
    after it (None: none)."""

    model: str
    model_hash: str
    priority: int = 1
    notify_url: str | None = None
    fold: str | None = None
    dictionary: DictionaryRef | None = None
    incremental: bool = False  # reuse identical earlier documents' entities (storage/core/recipe.py)


MAX_PRIORITY = 100
#: Documents stored before ingest first refreshes the planner's statistics (repo.analyze_documents).
ANALYZE_FIRST = 5_000


def job_options(settings: Settings, *, model: str | None = None, priority: int = 1,
                notify_url: str | None = None, fold: bool = True, dictionary: str | None = None,
                owner: str | None = None, sees_all: bool = True, incremental: bool = False) -> JobOptions:
    """Check a job's options: the model is known here (models directory, the default) or served by
    a live worker; ``priority`` is 1..100; the webhook URL (default ``settings.notify_url``) is
    http(s) and not a refused address; ``fold`` folds Traditional characters to Simplified before
    the model (offsets and entity texts stay the document's own); ``dictionary`` (``NAME`` or
    ``NAME@VERSION``, one ``owner`` may use unless ``sees_all``) names only types the model tags;
    ``incremental`` reuses the entities of identical earlier documents (same text, model, dictionary,
    fold and window settings) instead of tagging them again.

    Raises:
        UnknownModel: no such model (the known ones listed); PermanentError: a broken model, a bad
            priority, an unknown dictionary or one with types the model lacks; WebhookRefused: a
            refused webhook URL.
    """
    if not isinstance(priority, int) or not 1 <= priority <= MAX_PRIORITY:
        raise PermanentError(f"priority must be an integer from 1 to {MAX_PRIORITY}, not {priority!r}")
    name, digest = choose_model(settings, fields.MODEL.check(model))
    url = fields.NOTIFY_URL.check(notify_url) if notify_url is not None else settings.notify_url
    if url:
        check_url(url, allow_private=settings.webhook_allow_private)
    lexicon = None
    if dictionary is not None:
        lexicon = dictionaries.for_job(settings, dictionary, dictionaries.model_labels(settings, name), owner=owner,
                                       sees_all=sees_all)
    return JobOptions(name, digest, priority, url or None, fold_id() if fold else None, lexicon, bool(incremental))


def choose_model(settings: Settings, name: str | None = None) -> tuple[str, str]:
    """``(name, content hash)`` of the model a job asks for (default ``settings.model``): from this
    host's models; else from a live worker serving that name (an API host without model files);
    else as the newest earlier job recorded it (its pool is restarting: the job waits for it).

    Raises:
        UnknownModel: none of them knows it; the message lists every known name.
    """
    try:
        info = resolve(settings, name)
        return info.name, info.content_hash
    except UnknownModel:
        wanted = name or settings.model_name
        live = live_or_none(settings) or []
        for p in live:
            if p["model"] == wanted:
                return wanted, p["content_hash"]
        recorded = queries.recorded_model_hash(get_database(settings), wanted)
        if recorded is not None:
            return wanted, recorded
        names = sorted(set(known_names(settings)) | {p["model"] for p in live})
        raise UnknownModel(f"unknown model {wanted!r}; known: {', '.join(names)}") from None


#: Called while ingesting with the documents and characters read so far; raises to refuse the
#: upload (a quota): the job and everything stored of it are deleted, and the error propagates.
Admit = Callable[[int, int], None]


class Refused(ShitiError):
    """Raised by an :data:`Admit` check to stop an upload part-way; ``error`` is what the caller
    answers (e.g. the API's 429)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def submit_corpus(settings: Settings, source: str | Path | Iterable[Mapping[str, Any]], *,
                  fmt: str | None = None, client_token: str | None = None, id_field: str = "id",
                  text_field: str = "text", name: str | None = None, owner: str | None = None,
                  options: JobOptions | None = None, max_doc_chars: int | None = None,
                  admit: Admit | None = None) -> SubmitResult:
    """Validate and store a corpus as a new job, then enqueue its first batches.

    Streaming: documents are inserted ``settings.ingest_chunk`` at a time. Every record read
    gets a row: a bad text, a bad document id (``bad_id``) or a second copy of an id
    (``duplicate_id``) is a ``failed`` row with its reason. With a ``client_token`` already
    used, the same job is returned; if its ingest never finished (or failed), re-reading the
    source completes it without duplicates. An ingest that fails part-way (a database error, an
    interrupt) leaves the job ``failed`` with the reason and the count stored
    (``repo.fail_ingest``), never a job that waits for ever.

    Args:
        owner: the API key name submitting (its client tokens are its own); None from the CLI.
        options: model, priority, webhook (:func:`job_options`; default the default model).
        max_doc_chars: the longest document accepted (default ``settings.max_chars``).
        admit: checked after every record with the documents and characters read so far; a
            :class:`Refused` it raises deletes the job (nothing stored) and propagates.

    Raises:
        PermanentError: unreadable source (missing path, unknown format, CSV without the column),
            a bad name, client token or field name, or bad options; nothing is stored then.
        Refused: ``admit`` refused the upload; nothing is stored.
    """
    options = options or job_options(settings)
    if name is None and isinstance(source, (str, Path)):
        name = fields.safe_name(Path(source).name)
    fields.NAME.check(name)
    fields.CLIENT_TOKEN.check(client_token)
    fields.FIELD_NAME.check(id_field)
    fields.FIELD_NAME.check(text_field)
    limit = min(settings.max_chars, max_doc_chars or settings.max_chars)
    db = get_database(settings)
    records = read_corpus(source, fmt=fmt, id_field=id_field, text_field=text_field, max_chars=limit)
    job_id, created = repo.create_job(db, name=name, client_token=client_token, owner=owner,
                                      model=options.model, model_hash=options.model_hash,
                                      priority=options.priority, notify_url=options.notify_url,
                                      fold=options.fold, dictionary=options.dictionary,
                                      incremental=options.incremental)
    if not created and queries.get_job(db, job_id)["sealed"]:
        return _submitted(db, job_id, created=False, lines=0)  # every document of it is stored already
    lines = chars = 0
    analyze_at = ANALYZE_FIRST
    chunk: list[dict[str, Any]] = []
    try:
        for rec in records:
            row = document_row(rec, max_chars=limit)
            lines += 1
            chars += row["n_chars"]
            if admit is not None and created:
                admit(lines, chars)
            chunk.append(row)
            if len(chunk) >= settings.ingest_chunk:
                repo.insert_documents(db, job_id, chunk)
                chunk = []
                if lines >= analyze_at:  # at 5k, 20k, 80k ... documents: a handful of ANALYZEs per job
                    repo.analyze_documents(db)
                    analyze_at *= 4
        repo.insert_documents(db, job_id, chunk)
    except Refused:
        repo.discard_job(db, job_id)
        raise
    except BaseException as exc:  # an interrupt too: the job must not wait for ever
        _fail_ingest(db, job_id, exc)
        raise
    return _seal_and_dispatch(settings, job_id, created, lines=lines, options=options)


def job_recipe(settings: Settings, options: JobOptions) -> str:
    """The recipe (``storage.core.recipe``) a job's documents are tagged with, as this host's
    settings see it."""
    return recipe(model_hash=options.model_hash,
                  dictionary_hash=options.dictionary.content_hash if options.dictionary else None,
                  fold=options.fold, max_length=settings.max_length, overlap=settings.overlap)


def document_row(rec: Record, *, max_chars: int) -> dict[str, Any]:
    """The document row of one record read: its text checked (``check_text``) and its id
    checked (``fields.DOC_ID``); a record whose id cannot be stored is kept as a ``failed`` /
    ``bad_id`` row under ``line:N``."""
    checked = rec.failure if rec.failure is not None else check_text(rec.text or "", max_chars=max_chars)
    ext_id = rec.ext_id
    problem = fields.DOC_ID.problem(ext_id)
    if problem is not None:
        ext_id = f"line:{rec.line}"
        if checked.status != DocumentStatus.FAILED:
            checked = rejected(Reason.BAD_ID, f"line {rec.line}: {problem}")
    return {"ext_id": ext_id, "line": rec.line, "text": checked.text, "n_chars": len(checked.text),
            "status": checked.status, "reason": checked.reason, "error": checked.error}


def _fail_ingest(db: Any, job_id: str, exc: BaseException) -> None:
    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"[:500]
    log.error("ingest of job %s failed: %s", job_id, why, exc_info=not isinstance(exc, KeyboardInterrupt))
    try:
        repo.fail_ingest(db, job_id, why)
    except Exception:  # the database is away too: the reconciler fails it once its ingest is stale
        log.exception("could not mark job %s failed; the reconciler will", job_id)


def _seal_and_dispatch(settings: Settings, job_id: str, created: bool, *, lines: int = 0,
                       options: JobOptions | None = None) -> SubmitResult:
    db = get_database(settings)
    if options is not None and options.incremental:
        repo.reuse_done(db, job_id, job_recipe(settings, options))
    repo.seal_job(db, job_id)
    dispatched = True
    try:
        dispatch(settings, job_id=job_id, db=db)
    except (ShitiError, OSError, ConnectionError) as exc:
        # Documents stay pending; any worker's startup reconcile (or `shiti reconcile`) sends them.
        log.warning("job %s stored but not enqueued yet: %s", job_id, exc)
        dispatched = False
    except Exception as exc:  # kombu/redis connection errors have no common base we import here
        log.warning("job %s stored but not enqueued yet: %s", job_id, exc)
        dispatched = False
    return _submitted(db, job_id, created=created, lines=lines, dispatched=dispatched)


def _submitted(db: Any, job_id: str, *, created: bool, lines: int, dispatched: bool = True) -> SubmitResult:
    counts = queries.count_by_status(db, job_id)
    n_rejected = int(queries.count_failed_at_ingest(db, job_id))
    reused = int(queries.get_job(db, job_id)["reused"] or 0)
    return SubmitResult(job_id, created, sum(counts.values()), n_rejected, dispatched, lines, reused)


def rerun_job(settings: Settings, job_id: str, *, options: JobOptions | None = None, owner: str | None = None,
              name: str | None = None) -> SubmitResult:
    """A new job over ``job_id``'s stored documents (nothing re-uploaded), tagged by
    ``options.model`` (default the default model); compare the two with :func:`diff_jobs`.

    Raises:
        NotFound: unknown job; PermanentError: bad options, or a job whose documents are still
            being stored (not sealed).
    """
    options = options or job_options(settings)
    db = get_database(settings)
    source = queries.get_job(db, job_id)
    if not source["sealed"]:
        raise PermanentError(f"job {job_id} is still storing its documents; rerun it once submitted")
    new_id, _ = repo.create_job(db, name=name or f"rerun of {source['name'] or job_id}", owner=owner,
                                model=options.model, model_hash=options.model_hash, priority=options.priority,
                                notify_url=options.notify_url, rerun_of=job_id, fold=options.fold,
                                dictionary=options.dictionary, incremental=options.incremental)
    repo.copy_documents(db, source_job=job_id, job_id=new_id)
    return _seal_and_dispatch(settings, new_id, True, options=options)


def diff_jobs(settings: Settings, job_a: str, job_b: str, *, limit: int = 100) -> DiffView:
    """Entities only in A, only in B, and whose type changed, by document id, with counts per type.

    Raises:
        NotFound: an unknown job; NotComparable: the jobs hold different documents.
    """
    return diff.diff_jobs(get_database(settings), job_a, job_b, limit=limit)


def list_model_views(settings: Settings) -> list[ModelView]:
    """Models a job may name, with their live worker counts (``storage.catalog.model_views``)."""
    return model_views(settings, live_or_none(settings) or [])


def throughput(settings: Settings, job_id: str, *, buckets: int = 40) -> dict[str, Any]:
    """Documents and characters finished per second over the job's run, in ``buckets`` equal
    spans (``storage.sql.queries.throughput``; the page's chart).

    Raises:
        NotFound: unknown ``job_id``.
    """
    return queries.throughput(get_database(settings), job_id, buckets=buckets)


def job_status(settings: Settings, job_id: str) -> JobProgress:
    """The ``shiti status --json`` object of a job (rates over the running time so far)."""
    db = get_database(settings)
    j = queries.get_job(db, job_id)
    terminal = j["done"] + j["failed"] + j["cancelled"]
    started, finished = j["started_at"], j["finished_at"]
    elapsed = ((finished or time.time()) - started) if started else 0.0
    docs_done = j["done"] + j["failed"]
    dps = docs_done / elapsed if elapsed > 0 else 0.0
    cps = j["chars_done"] / elapsed if elapsed > 0 else 0.0
    left = j["chars_total"] - j["chars_done"]
    if j["status"] in (JobStatus.SUBMITTED, JobStatus.RUNNING) and cps > 0:
        eta: float | None = round(left / cps, 1)
    elif finished:
        eta = 0.0
    else:
        eta = None
    progress: JobProgress = {
        "job_id": j["id"], "name": j["name"], "state": j["status"],
        "total": j["total"], "done": j["done"], "failed": j["failed"],
        "pending": max(0, j["total"] - terminal - j["processing"]),
        "processing": j["processing"], "cancelled": j["cancelled"],
        "chars_total": j["chars_total"], "chars_done": j["chars_done"],
        "docs_per_second": round(dps, 2), "chars_per_second": round(cps, 1), "eta_seconds": eta,
        "submitted_at": iso_time(j["submitted_at"]), "started_at": iso_time(started),
        "finished_at": iso_time(finished),
        "failures": [{"doc_id": f["doc_id"], "reason": f["reason"], "error": f["error"]}
                     for f in queries.failures(db, job_id, limit=10)],
        "model": j["model"], "model_hash": j["model_hash"], "fold": j["fold"],
        "dictionary": j["dictionary"], "dictionary_hash": j["dictionary_hash"], "priority": j["priority"],
        "incremental": bool(j["incremental"]), "reused": int(j["reused"] or 0), "paused": bool(j["paused"]),
        "rerun_of": j["rerun_of"], "gold_of": j["gold_of"], "workers": None, "waiting_for": None, "notify": _notify_view(db, j), "error": j["error"],
    }
    if j["status"] in JOB_OPEN:
        progress["workers"], progress["waiting_for"] = _serving(settings, j["model"] or settings.model_name,
                                                                j["model_hash"])
    return progress


def _serving(settings: Settings, model: str, model_hash: str | None) -> tuple[int | None, str | None]:
    """Live workers serving ``model`` with ``model_hash``, and what an open job waits for if none."""
    live = live_or_none(settings)
    if live is None:
        return None, None
    named = [p for p in live if p["model"] == model]
    matching = [p for p in named if model_hash is None or p["content_hash"] == model_hash]
    if matching:
        return len(matching), None
    if named:
        others = ", ".join(sorted({p["content_hash"][:12] for p in named}))
        return 0, (f"a worker serving {model} with content sha256 {(model_hash or '')[:12]}; the live workers "
                   f"of {model} hold other files (sha256 {others})")
    return 0, f"a worker serving {model}"


def _notify_view(db: Any, j: Mapping[str, Any]) -> NotifyView | None:
    if not j["notify_url"]:
        return None
    d = delivery_status(db, j["id"])
    if d is None:
        return {"url": redact_url(j["notify_url"]), "state": "waiting for the job to finish", "attempts": 0,
                "last_error": None, "last_attempt_at": None, "delivered_at": None, "event_id": None}
    return {"url": redact_url(d["url"]), "state": d["state"], "attempts": d["attempts"], "last_error": d["last_error"],
            "last_attempt_at": iso_time(d["last_attempt_at"]), "delivered_at": iso_time(d["delivered_at"]),
            "event_id": d["event_id"]}


def wait_job(settings: Settings, job_id: str, *, timeout: float | None = None, poll: float = 0.5,
             max_poll: float | None = None, on_status: Callable[[JobProgress], None] | None = None,
             ) -> JobProgress:
    """Poll :func:`job_status` until the job is terminal and return its last status: the one
    "wait for a job" of the CLI (progress bar), the API (``POST /extract``), tests and benches.

    Args:
        timeout: seconds; None waits forever.
        poll: seconds between polls, doubled after each up to ``max_poll`` (default: fixed).
        on_status: called with every status polled (progress display).

    Raises:
        JobWaitTimeout: the job was not terminal after ``timeout`` seconds (it keeps running).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = job_status(settings, job_id)
        if on_status is not None:
            on_status(status)
        if status["state"] in JOB_TERMINAL:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise JobWaitTimeout(job_id, timeout or 0.0)
        time.sleep(poll)
        poll = min(poll * 2, max_poll) if max_poll else poll


def list_jobs(settings: Settings, *, state: str | None = None, limit: int = 50,
              cursor: str | None = None, owner: str | None = None) -> JobPage:
    """Recent jobs, newest first (only ``owner``'s when given): ``{"items": [...], "next_cursor"}``."""
    rows, nxt = queries.list_jobs(get_database(settings), state=state, limit=limit,
                                  cursor=int(cursor) if cursor else None, owner=owner)
    items: list[JobSummary | JobProgress] = [
             {"job_id": r["id"], "name": r["name"], "state": r["status"], "total": r["total"],
              "done": r["done"], "failed": r["failed"], "cancelled": r["cancelled"],
              "submitted_at": iso_time(r["submitted_at"]), "finished_at": iso_time(r["finished_at"]),
              "model": r["model"], "model_hash": r["model_hash"], "fold": r["fold"],
              "dictionary": r["dictionary"], "dictionary_hash": r["dictionary_hash"], "priority": r["priority"]}
             for r in rows]
    return {"items": items, "next_cursor": str(nxt) if nxt is not None else None}


def _known(settings: Settings, job_id: str) -> None:
    queries.get_job(get_database(settings), job_id)  # raises NotFound


def find_entities(settings: Settings, job_id: str, *, label: str | None = None, text: str | None = None,
                  doc: str | None = None, cursor: str | None = None, min_score: float | None = None,
                  limit: int = 100) -> EntityPage:
    """Entities of a job (exact-match filters, and a least score): ``{"items": [...], "next_cursor": ...}``."""
    _known(settings, job_id)
    items, nxt = queries.find_entities(get_database(settings), job_id, label=label, text=text, doc=doc,
                                       cursor=int(cursor) if cursor else None,
                                       min_score=fields.min_score(min_score), limit=limit)
    return {"items": items, "next_cursor": str(nxt) if nxt is not None else None}


def top_entities(settings: Settings, job_id: str, *, label: str | None = None,
                 limit: int = 20) -> list[TopEntity]:
    """Most frequent entity strings, ``limit`` per label: ``[{"label", "text", "count"}]``,
    grouped by label, most frequent first."""
    _known(settings, job_id)
    return queries.top_entities(get_database(settings), job_id, label=label, limit=limit)


def get_document(settings: Settings, job_id: str, doc_id: str) -> DocumentView:
    """One document: ``{doc_id, text, state, reason, error, attempts, line, entities}``."""
    _known(settings, job_id)
    return queries.get_document(get_database(settings), job_id, doc_id)


def export_entities(settings: Settings, job_id: str, *, min_score: float | None = None) -> Iterator[ExportRecord]:
    """Stream one record per document: ``{doc_id, state, length, entities, model, model_hash, fold,
    dictionary, dictionary_hash[, reason]}``; entities scored under ``min_score`` left out."""
    _known(settings, job_id)
    return queries.iter_export(get_database(settings), job_id, min_score=fields.min_score(min_score))


def failed_documents(settings: Settings, job_id: str, *, reason: str | None = None, cursor: str | None = None,
                     limit: int = 100) -> dict[str, Any]:
    """A page of a job's failed documents with their reasons, and the count per reason."""
    _known(settings, job_id)
    return queries.failure_page(get_database(settings), job_id, reason=reason, cursor=cursor, limit=limit)


def cancel_job(settings: Settings, job_id: str) -> JobProgress:
    """Cancel a job; returns its status object. Raises ``InvalidTransition`` if already final."""
    repo.cancel_job(get_database(settings), job_id)
    return job_status(settings, job_id)


def retry_failed(settings: Settings, job_id: str, *, reason: str | None = None) -> RetryResult:
    """Re-queue a job's failed documents (not bad input; only those failed with ``reason``, e.g.
    ``timeout``, when given); returns ``{"requeued": n, **status}``.

    Raises:
        PermanentError: ``reason`` is not a failure reason one can retry.
    """
    if reason is not None:
        retryable = sorted(r.value for r in Reason if r not in INPUT_REASONS and r not in (
            Reason.EMPTY, Reason.CANCELLED, Reason.REUSED, Reason.INGEST_FAILED))
        if reason not in retryable:
            raise PermanentError(f"reason must be one of {', '.join(retryable)}, not {str(reason)[:40]!r}")
    db = get_database(settings)
    n = repo.retry_failed(db, job_id, reason=reason)
    if n:
        try:
            dispatch(settings, job_id=job_id, db=db)
        except Exception as exc:  # documents stay pending for the reconciler
            log.warning("retry of %s stored but not enqueued yet: %s", job_id, exc)
    return {**job_status(settings, job_id), "requeued": n}


def purge(settings: Settings, *, job_id: str | None = None, older_than: str | None = None,
          dry_run: bool = False, now: float | None = None) -> list[dict[str, Any]]:
    """Delete one finished job, or every job finished more than ``older_than`` (``30d``, ``12h``)
    ago, with its documents and entities, in bounded batches (``storage/sql/retention.py``);
    ``dry_run`` only lists them. Returns one ``{job_id, documents, entities}`` per job.

    Raises:
        NotFound: no such job; InvalidTransition: it is not finished; PermanentError: neither or
            both of ``job_id`` and ``older_than``, or a bad age.
    """
    if (job_id is None) == (older_than is None):
        raise PermanentError("name a job or an age (--older-than 30d), not both")
    db = get_database(settings)
    if job_id is not None:
        targets = [job_id]
    else:
        cutoff = (time.time() if now is None else now) - fields.age_seconds(older_than or "")
        targets = retention.finished_before(db, cutoff)
    if dry_run:
        out = []
        for jid in targets:
            row = queries.get_job(db, jid)
            if row["status"] not in JOB_TERMINAL:
                raise InvalidTransition(f"job {jid} is {row['status']}: only a finished job is purged")
            out.append({"job_id": jid, "documents": int(row["total"]), "entities": None})
        return out
    return [retention.purge_job(db, jid) for jid in targets]


def pause(settings: Settings, *, job_id: str | None = None, model: str | None = None,
          paused: bool = True) -> list[str]:
    """Pause (``paused``) or resume one open job, or every open job of ``model``: a paused job gets
    no new batch (a batch already queued goes back to pending when a worker takes it), its running
    documents finish, and nothing is lost; resuming hands its batches out again. Returns the job
    ids changed.

    Raises:
        NotFound: no such job; InvalidTransition: it is finished; PermanentError: neither or both
            of ``job_id`` and ``model``.
    """
    if (job_id is None) == (model is None):
        raise PermanentError("name a job or a model (--model NAME), not both")
    db = get_database(settings)
    changed = repo.set_paused(db, paused=paused, job_id=job_id, model=fields.MODEL.check(model))
    if changed and not paused:
        try:
            dispatch(settings, db=db)
        except Exception as exc:  # documents stay pending for the reconciler
            log.warning("resumed %s but not enqueued yet: %s", ", ".join(changed), exc)
    return changed


__all__ = [
    "DocumentStatus", "JobOptions", "NotFound", "SubmitResult", "cancel_job", "choose_model", "diff_jobs",
    "export_entities", "find_entities", "purge", "get_document", "job_options", "job_status", "list_jobs",
    "list_model_views", "pause", "rerun_job", "retry_failed", "submit_corpus", "top_entities",
]
