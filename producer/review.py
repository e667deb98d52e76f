"""A job's documents for annotators: exported in an annotation tool's format, and the ones worth
correcting first (``shiti sample``). See docs/corrections.md."""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from producer import fields
from producer.annotation import bio, doccano, label_studio
from producer.annotation.offsets import CONVENTIONS, Convention
from storage.catalog import resolve
from storage.core.domain import DocumentStatus
from storage.core.errors import PermanentError
from storage.core.settings import Settings
from storage.core.views import ExportRecord
from storage.sql import diff, gold, queries, review
from storage.sql.db import get_database

#: ``shiti export --format``: shiti's own JSON Lines, then the annotation tools' formats.
FORMATS = ("jsonl", "label-studio", "doccano", "conll", "bio")
REVIEW_FORMATS = FORMATS[1:]
#: The types of a labeling config whose model does not declare its own (a ``py:`` tagger).
FALLBACK_LABELS = ("PER", "LOC", "ORG")
#: ``shiti sample --by``.
SAMPLERS = ("uncertainty", "disagreement", "random")
MAX_SAMPLE = 100_000
#: Each tool's own offset convention (producer/annotation/offsets.py).
DEFAULT_OFFSETS: dict[str, Convention] = {"label-studio": "codepoint", "doccano": "utf16"}
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "label-studio": "application/json",
               "doccano": "application/x-ndjson", "conll": "text/plain", "bio": "text/plain"}
EXTENSIONS = {"jsonl": "jsonl", "label-studio": "json", "doccano": "jsonl", "conll": "conll", "bio": "txt"}


def check_format(fmt: str, offsets: str | None = None) -> Convention | None:
    """The offset convention to write ``fmt`` in (None: the format has none).

    Raises:
        PermanentError: an unknown format or convention, or a convention for a format without offsets.
    """
    if fmt not in FORMATS:
        raise PermanentError(f"format must be one of {', '.join(FORMATS)}, not {str(fmt)[:40]!r}")
    if offsets is not None and offsets not in CONVENTIONS:
        raise PermanentError(f"offsets must be one of {', '.join(CONVENTIONS)}, not {str(offsets)[:40]!r}")
    if offsets is not None and fmt not in DEFAULT_OFFSETS:
        raise PermanentError(f"format {fmt} has no offsets to count (offsets apply to label-studio and doccano)")
    return offsets if offsets is not None else DEFAULT_OFFSETS.get(fmt)


def model_version(rec: ExportRecord) -> str:
    """What a Label Studio prediction names as its model: name:hash, and the dictionary when one
    was used (``+name@version:hash``)."""
    out = f"{rec['model'] or '-'}:{(rec['model_hash'] or '-')[:12]}"
    if rec["dictionary"]:
        out += f"+{rec['dictionary']}:{(rec['dictionary_hash'] or '-')[:12]}"
    return out


def render(records: Iterable[ExportRecord], fmt: str, *, job_id: str, offsets: Convention | None = None) -> Iterator[str]:
    """The text of an export in ``fmt``, piece by piece (streamed; a Label Studio export is one
    JSON list). The annotation formats carry done documents only, each with its text."""
    if fmt == "jsonl":
        for rec in records:
            yield json.dumps(rec, ensure_ascii=False) + "\n"
        return
    first = True
    if fmt == "label-studio":
        yield "["
    for rec in records:
        if rec["state"] != DocumentStatus.DONE:
            continue
        text, ents = rec.get("text", ""), rec["entities"]
        if fmt == "label-studio":
            item = label_studio.task(text, rec["doc_id"], ents, model_version=model_version(rec), job=job_id)
            yield ("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False)
        elif fmt == "doccano":
            yield json.dumps(doccano.record(text, rec["doc_id"], ents, job=job_id, convention=offsets or "utf16"),
                             ensure_ascii=False) + "\n"
        else:
            spans = [(e["start"], e["end"], e["label"]) for e in ents]
            doc_id = rec["doc_id"] if fmt == "conll" else None
            yield "".join(line + "\n" for line in bio.lines(text, spans, doc_id))
        first = False
    if fmt == "label-studio":
        yield "\n]\n"


def export(settings: Settings, job_id: str, fmt: str = "jsonl", *, min_score: float | None = None,
           offsets: str | None = None, rows: Sequence[int] | None = None) -> Iterator[str]:
    """``shiti export JOB --format FMT``: the job (or its documents ``rows``) as text pieces.

    Raises:
        NotFound: unknown job (before the first piece). PermanentError: bad format or offsets.
    """
    convention = check_format(fmt, offsets)
    db = get_database(settings)
    queries.get_job(db, job_id)
    records = queries.iter_export(db, job_id, min_score=fields.min_score(min_score), text=fmt != "jsonl", rows=rows)
    return render(records, fmt, job_id=job_id, offsets=convention)


def label_config(settings: Settings, job_id: str) -> str:
    """The Label Studio labeling config for a job's entity types (its model's)."""
    row = queries.get_job(get_database(settings), job_id)
    return label_studio.label_config(resolve(settings, row["model"]).labels or FALLBACK_LABELS)


@dataclass(frozen=True, slots=True)
class Pick:
    """One sampled document: its row, its id and why it was picked (the sampler's measure:
    the least entity score, the number of differences, or the random key)."""

    row_id: int
    doc_id: str
    measure: float


def _tie(seed: int, doc_id: str) -> float:
    """A seeded pseudo-random number in [0, 1) of a document id: the same for a seed on every run
    and database, whatever order the rows come in."""
    digest = hashlib.sha256(f"{seed}\x1f{doc_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def sample(settings: Settings, job_id: str, *, n: int, by: Literal["uncertainty", "disagreement", "random"] | str,
           against: str | None = None, seed: int = 0, include_corrected: bool = False) -> list[Pick]:
    """The ``n`` done documents of ``job_id`` most worth correcting, best first, never one twice:

    - ``uncertainty``: the least certain entity first (the calibrated score is the chance an entity
      is right), then the most entities under 0.9; documents without entities come last;
    - ``disagreement``: most differences from ``against`` (a rerun, another model) first; only
      documents where they differ;
    - ``random``: a seeded random sample.

    Ties are broken by a seeded hash of the document id, so a seed gives the same sample every
    time. Documents already corrected (any corrections job of ``job_id``) are left out unless
    ``include_corrected``.

    Raises:
        NotFound: unknown job. PermanentError: bad ``n``/``by``, ``against`` missing or given
            without ``disagreement``. NotComparable: ``against`` holds other documents.
    """
    if by not in SAMPLERS:
        raise PermanentError(f"by must be one of {', '.join(SAMPLERS)}, not {str(by)[:40]!r}")
    if not isinstance(n, int) or not 1 <= n <= MAX_SAMPLE:
        raise PermanentError(f"n must be 1..{MAX_SAMPLE:,}")
    if (by == "disagreement") != (against is not None):
        raise PermanentError("--against JOB_B goes with --by disagreement (and only with it)")
    db = get_database(settings)
    queries.get_job(db, job_id)
    skip = set() if include_corrected else gold.corrected_ids(db, job_id)
    candidates: Iterator[tuple[tuple[float, ...], Pick]]
    if by == "uncertainty":
        candidates = (((1.0 if c.least is None else c.least, float(c.least is None), -c.unsure, _tie(seed, c.doc_id)),
                       Pick(c.row_id, c.doc_id, 1.0 if c.least is None else c.least))
                      for c in review.certainties(db, job_id) if c.doc_id not in skip)
    elif by == "disagreement":
        assert against is not None
        done = {c.row_id for c in review.certainties(db, job_id)}
        candidates = (((-float(k), _tie(seed, doc_id)), Pick(row, doc_id, float(k)))
                      for row, doc_id, k in diff.disagreements(db, job_id, against)
                      if k > 0 and row in done and doc_id not in skip)
    else:
        candidates = (((key,), Pick(c.row_id, c.doc_id, key)) for c in review.certainties(db, job_id)
                      if c.doc_id not in skip for key in (_tie(seed, c.doc_id),))
    return [pick for _, pick in heapq.nsmallest(n, candidates, key=lambda kp: kp[0])]
