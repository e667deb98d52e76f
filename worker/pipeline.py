"""Texts in, entities out, for the task: load the configured tagger, annotate, isolate failures.

Nothing here imports torch: an ONNX model runs on onnxruntime, and only a torch model
(a RaNER directory or a torch artifact) loads torch, under ``worker.model``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded

from storage.domain import ClaimedDocument, Entity, Outcome, Reason
from storage.settings import Settings
from worker.model.errors import DeadlineExceeded  # torch-free module

log = logging.getLogger(__name__)
WARMUP_TEXT = "新华社北京电，张伟在上海复旦大学参加会议。"


class TaggerLike(Protocol):
    def annotate(self, texts: Sequence[str], *, deadline: float | None = None) -> list[list[Any]]: ...


def load_configured_tagger(settings: Settings) -> TaggerLike:
    """The tagger named by ``settings.model``: a model directory, or ``py:module:factory``
    (a zero-argument factory, used by tests to run workers on a fake tagger)."""
    if settings.model.startswith("py:"):
        module, _, factory = settings.model[3:].partition(":")
        return getattr(importlib.import_module(module), factory or "make_tagger")()
    from worker.model.tagger import load_tagger

    return load_tagger(settings.model, max_length=settings.max_length or None, overlap=settings.overlap,
                       int8=settings.int8, engine=settings.quant_engine, threads=settings.threads)


def annotate(texts: Sequence[str], tagger: TaggerLike, settings: Settings, *,
             deadline: float | None = None) -> list[list[Entity]]:
    """Entities per text (batched across texts by the tagger), checked against their text.

    An entity whose offsets do not reproduce its text is dropped and logged: stored rows
    always satisfy ``text[start:end] == entity.text``.

    Args:
        deadline: ``time.monotonic()`` value; default the sum of the texts' per-document
            deadlines (``Settings.doc_deadline``) from now, capped at half the soft time
            limit so that the one-by-one fallback after a missed deadline still fits in the
            task's time. The tagger raises ``DeadlineExceeded`` when it passes.
    """
    if deadline is None:
        budget = sum(settings.doc_deadline(len(t)) for t in texts)
        if len(texts) > 1:
            budget = min(budget, settings.soft_time_limit / 2)
        deadline = time.monotonic() + budget
    results = tagger.annotate(list(texts), deadline=deadline)
    out: list[list[Entity]] = []
    for text, found in zip(texts, results, strict=True):
        ents = []
        for e in found:
            if text[e.start:e.end] != e.text:
                log.error("dropping entity %r at %d:%d: offsets do not match the text", e.text, e.start, e.end)
                continue
            ents.append(Entity(int(e.start), int(e.end), str(e.label), str(e.text), float(e.score)))
        out.append(ents)
    return out


def annotate_claimed(docs: Sequence[ClaimedDocument], tagger: TaggerLike, settings: Settings) -> list[Outcome]:
    """Outcomes for claimed documents: one batched call, and if it raises, one call per
    document so a failing document fails alone (``error``, or ``timeout`` past its own
    deadline). ``SoftTimeLimitExceeded`` always propagates: it subclasses ``Exception``."""
    try:
        found = annotate([d.text for d in docs], tagger, settings)
        return [Outcome(d.id, d.n_chars, tuple(ents)) for d, ents in zip(docs, found, strict=True)]
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        if len(docs) == 1:
            return [_failed(docs[0])]
        log.warning("batch of %d raised; retrying its documents one by one", len(docs), exc_info=True)
    outcomes = []
    for doc in docs:
        try:
            outcomes.append(Outcome(doc.id, doc.n_chars, tuple(annotate([doc.text], tagger, settings)[0])))
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            outcomes.append(_failed(doc))
    return outcomes


def _failed(doc: ClaimedDocument) -> Outcome:
    exc = sys.exc_info()[1]
    reason = Reason.TIMEOUT if isinstance(exc, DeadlineExceeded) else Reason.ERROR
    log.warning("document %s failed (%s): %r", doc.ext_id, reason, exc)
    return Outcome(doc.id, doc.n_chars, (), error=f"{type(exc).__name__}: {exc}", reason=reason)
