"""Bringing annotators' corrections back (``shiti data import``): an annotation tool's export read
into corrected documents, checked against the model's entity types and, with a job, against the
documents it holds; written as a BIO training file with its lineage, and stored as gold.

Nothing is written or stored unless every task passes (docs/corrections.md, "Bad input").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer import fields
from producer.annotation import bio, doccano, label_studio
from producer.annotation.offsets import CONVENTIONS
from producer.annotation.spans import Correction, CorrectionError
from producer.review import DEFAULT_OFFSETS
from storage.catalog import resolve
from storage.core.errors import PermanentError
from storage.core.lineage import CORRECTIONS_FORMAT, sidecar
from storage.core.settings import Settings
from storage.sql import gold, queries
from storage.sql.db import get_database

#: ``shiti data import --from``.
TOOLS = ("label-studio", "doccano", "conll")
#: Largest export read (bytes): corrections are hundreds to thousands of documents.
MAX_BYTES = 256 * 1024 * 1024
LINEAGE_FORMAT = CORRECTIONS_FORMAT


def guess_tool(path: str | Path) -> str:
    """The tool an export file most likely comes from, by its extension."""
    suffix = Path(path).suffix.lower()
    return {".json": "label-studio", ".jsonl": "doccano"}.get(suffix, "conll")


@dataclass
class Imported:
    """What an import read and did."""

    tool: str
    file_sha256: str
    corrections: list[Correction]
    skipped: list[str] = field(default_factory=list)  # tasks nobody annotated
    gold_job: str | None = None
    out: str | None = None

    def view(self) -> dict[str, Any]:
        """The JSON answer of the CLI and the API."""
        return {"tool": self.tool, "file_sha256": self.file_sha256, "documents": len(self.corrections),
                "entities": sum(len(c.spans) for c in self.corrections), "skipped": len(self.skipped),
                "gold_job": self.gold_job, "out": self.out}


def read_corrections(data: bytes, tool: str, labels: Sequence[str] | None, *, offsets: str | None = None,
                     accept_predictions: bool = False) -> tuple[list[Correction], list[str]]:
    """Every task's corrections and the names of tasks skipped (not annotated).

    Raises:
        PermanentError: unknown tool or offsets, not UTF-8, too large, no annotated task.
        CorrectionError: the first task that cannot be used, named.
    """
    if tool not in TOOLS:
        raise PermanentError(f"--from must be one of {', '.join(TOOLS)}, not {str(tool)[:40]!r}")
    if offsets is not None and (offsets not in CONVENTIONS or tool == "conll"):
        raise PermanentError(f"offsets must be one of {', '.join(CONVENTIONS)}, for label-studio or doccano")
    if len(data) > MAX_BYTES:
        raise PermanentError(f"the export has {len(data):,} bytes; the limit is {MAX_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PermanentError(f"the export is not UTF-8 (byte {exc.start})") from None
    skipped: list[str] = []
    found: list[Correction] = []
    if tool == "label-studio":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"the export is not JSON (line {exc.lineno}: {exc.msg})") from None
        except RecursionError:
            raise PermanentError("the export is nested too deeply to be a Label Studio export") from None
        for got in label_studio.read_export(items, labels, accept_predictions=accept_predictions,
                                            convention=offsets or DEFAULT_OFFSETS["label-studio"]):
            if isinstance(got, str):
                skipped.append(got)
            else:
                found.append(got)
    elif tool == "doccano":
        try:
            found = list(doccano.read_export(text.splitlines(), labels,
                                             convention=offsets or DEFAULT_OFFSETS["doccano"]))
        except RecursionError:
            raise PermanentError("a line of the export is nested too deeply to be a doccano record") from None
    else:
        found = list(bio.read_conll(text.splitlines(), labels))
    if not found:
        raise PermanentError("the export holds no annotated task" + (
            f" ({len(skipped)} tasks nobody annotated; --accept-predictions takes their predictions as they are)"
            if skipped else ""))
    for c in found:
        _check_values(c)
    _no_duplicates(found)
    return found, skipped


#: The longest corrected document read (as the longest document a job stores, SHITI_MAX_CHARS).
_TEXT = fields.Field("its text", 5_000_000)
_LABEL = fields.Field("a label", 20, single_line=True)


def _check_values(c: Correction) -> None:
    """Refuse what no document, id or label of shiti can hold (a NUL, a lone surrogate, too long),
    before it reaches a file or the database."""
    problem = _TEXT.problem(c.text) or (fields.DOC_ID.problem(c.doc_id) if c.doc_id is not None else None)
    problem = problem or next((p for _, _, label in c.spans if (p := _LABEL.problem(label))), None)
    if problem is not None:
        raise CorrectionError(c.task, problem)


def _no_duplicates(found: Sequence[Correction]) -> None:
    seen: dict[str, str] = {}
    for c in found:
        key = f"id {c.doc_id!r}" if c.doc_id is not None else f"text {c.text[:30]!r}"
        if key in seen:
            raise CorrectionError(c.task, f"the same document ({key}) as task {seen[key]}: one correction per document")
        seen[key] = c.task


def match_job(settings: Settings, job_id: str, found: Sequence[Correction]) -> list[gold.GoldDocument]:
    """The corrections as gold documents of ``job_id``: each matched by its document id (or, when
    the tool lost it, by its exact text) to a stored document whose text it must equal.

    Raises:
        NotFound: no such job. CorrectionError: a task whose document the job lacks, whose text
            differs from the stored one, matched to two documents, or the same document as another.
    """
    db = get_database(settings)
    queries.get_job(db, job_id)
    by_id = gold.stored_by_id(db, job_id, [c.doc_id for c in found if c.doc_id is not None])
    by_text = gold.stored_by_text(db, job_id, [c.text for c in found if c.doc_id is None])
    out: list[gold.GoldDocument] = []
    taken: dict[str, str] = {}
    for c in found:
        if c.doc_id is not None:
            if c.doc_id not in by_id:
                raise CorrectionError(c.task, f"job {job_id} has no document {c.doc_id[:100]!r}")
            line, stored = by_id[c.doc_id]
            ext_id = c.doc_id
        else:
            hits = by_text.get(c.text, [])
            if len(hits) != 1:
                raise CorrectionError(c.task, f"its text is {'in no' if not hits else f'in {len(hits)}'} document(s) of "
                                              f"job {job_id} (and the task carries no doc_id)")
            (ext_id, line), stored = hits[0], c.text
        spans = c.spans
        if stored != c.text:
            if c.task.startswith("line") and c.text.replace("\n", "") == stored.replace("\r", "").replace("\n", ""):
                spans = bio.realign(c.task, stored, c.text, c.spans)  # CoNLL keeps no line-break characters
            else:
                raise CorrectionError(c.task, f"its text differs from stored document {ext_id[:100]!r} "
                                              "(a task of another job, or text edited in the tool)")
        if ext_id in taken:
            raise CorrectionError(c.task, f"the same document {ext_id[:100]!r} as task {taken[ext_id]}")
        taken[ext_id] = c.task
        out.append(gold.GoldDocument(ext_id, line, stored, spans))
    return out


def write_training_file(out: Path, docs: Sequence[tuple[str, Sequence[tuple[int, int, str]]]],
                        lineage: dict[str, Any]) -> None:
    """``out`` as a BIO file ``shiti model train`` reads, and its lineage beside it, each written
    whole or not at all."""
    _atomic(out, "".join(line + "\n" for text, spans in docs for line in bio.lines(text, spans)))
    lineage = {**lineage, "file": out.name,
               "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    _atomic(sidecar(out), json.dumps(lineage, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def _atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_corrections(settings: Settings, data: bytes, *, tool: str, source_name: str = "-",
                       job_id: str | None = None, model: str | None = None, out: Path | None = None,
                       offsets: str | None = None, accept_predictions: bool = False, owner: str | None = None,
                       name: str | None = None) -> Imported:
    """``shiti data import``: read ``data`` (an export of ``tool``), check it, then write ``out``
    (BIO + lineage) and/or store it as gold of ``job_id``. Labels are checked against ``model``'s
    entity types (default: the job's model, else the deployment's).

    Raises:
        PermanentError: neither ``out`` nor ``job_id``; and every error of :func:`read_corrections`
            and :func:`match_job`. Nothing is written or stored then.
    """
    if out is None and job_id is None:
        raise PermanentError("say where the corrections go: --out train.txt, --job JOB, or both")
    fields.NAME.check(name)
    db = get_database(settings)
    job_model = queries.get_job(db, job_id)["model"] if job_id is not None else None
    info = resolve(settings, model or job_model)
    found, skipped = read_corrections(data, tool, info.labels or None, offsets=offsets,
                                      accept_predictions=accept_predictions)
    digest = hashlib.sha256(data).hexdigest()
    result = Imported(tool=tool, file_sha256=digest, corrections=found, skipped=skipped)
    matched = match_job(settings, job_id, found) if job_id is not None else None
    source = {"tool": tool, "export": source_name, "export_sha256": digest, "tasks": len(found) + len(skipped),
              "documents": len(found), "entities": sum(len(c.spans) for c in found), "skipped": len(skipped),
              "labels": list(info.labels)}
    if matched is not None and job_id is not None:
        result.gold_job = gold.store_gold(db, of_job=job_id, docs=matched, owner=owner, source=source,
                                          name=name or f"corrections of {job_id} ({source_name[-120:]})")
    if out is not None:
        docs = [(d.text, d.spans) for d in matched] if matched is not None else [(c.text, c.spans) for c in found]
        write_training_file(out, docs, {"format": LINEAGE_FORMAT, **source, "job": job_id,
                                        "gold_job": result.gold_job, "model": info.name,
                                        "model_hash": info.content_hash})
        result.out = str(out)
    return result
