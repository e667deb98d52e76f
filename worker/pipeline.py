"""Texts in, entities out, for the task: load the configured tagger, annotate, isolate failures.

Nothing here imports torch: workers serve ONNX artifacts on onnxruntime (``worker.tagger``).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded

from storage.core.domain import ClaimedDocument, Entity, Outcome, Reason
from storage.core.fold import fold
from storage.catalog import resolve
from storage.core.settings import PY_PREFIX, Settings
from worker.tagger.errors import DeadlineExceeded, Stopped
from worker.tagger.lexicon import Lexicon, apply

log = logging.getLogger(__name__)
WARMUP_TEXT = "新华社北京电，张伟在上海复旦大学参加会议。"


class TaggerLike(Protocol):
    def annotate(self, texts: Sequence[str], *, deadline: float | None = None,
                 stop: Callable[[], bool] | None = None) -> list[list[Any]]: ...


def load_configured_tagger(settings: Settings) -> TaggerLike:
    """The tagger named by ``settings.model``: a model of the models directory or a model
    directory's path (``storage.catalog.resolve``), or ``py:module:factory`` (a zero-argument
    factory, used by tests to run workers on a fake tagger)."""
    if settings.model.startswith(PY_PREFIX):
        module, _, factory = settings.model[len(PY_PREFIX):].partition(":")
        return getattr(importlib.import_module(module), factory or "make_tagger")()
    from worker.tagger.loading import load_tagger

    return load_tagger(resolve(settings).path, max_length=settings.max_length or None, overlap=settings.overlap,
                       threads=settings.threads)


def annotate_text(text: str, tagger: TaggerLike, settings: Settings, *,
                  stop: Callable[[], bool] | None = None, folded: bool = False,
                  lexicon: Lexicon | None = None) -> list[Entity]:
    """Entities of one text, checked against it, under the text's own deadline
    (``Settings.doc_deadline``; the tagger raises ``DeadlineExceeded`` when it passes) and
    ``stop`` (asked between windows; the tagger raises ``Stopped``).

    With ``folded`` the model reads the text with its Traditional characters folded to Simplified
    (``storage.core.fold``: one code point for one, so offsets carry over), and each entity's text
    is the document's own characters at those offsets.

    With ``lexicon`` the job's dictionary is applied to the merged entities
    (``worker.tagger.lexicon.apply``: forced terms, blocked ones), on the text the model read.

    An entity whose offsets do not reproduce its text is dropped and logged: stored rows
    always satisfy ``text[start:end] == entity.text``.
    """
    deadline = time.monotonic() + settings.doc_deadline(len(text))
    seen = fold(text) if folded else text
    (found,) = tagger.annotate([seen], deadline=deadline, stop=stop)
    ents = []
    for e in found:
        if seen[e.start:e.end] != e.text:
            log.error("dropping entity %r at %d:%d: offsets do not match the text", e.text, e.start, e.end)
            continue
        ents.append(Entity(int(e.start), int(e.end), str(e.label), text[e.start:e.end], float(e.score)))
    return apply(text, seen, ents, lexicon) if lexicon is not None else ents


def annotate_claimed(docs: Sequence[ClaimedDocument], tagger: TaggerLike, settings: Settings, *,
                     stop: Callable[[], bool] = lambda: False,
                     cancelled: Callable[[], bool] = lambda: False, folded: bool = False,
                     lexicon: Lexicon | None = None) -> list[Outcome]:
    """Outcomes for claimed documents, tagged one at a time: a failing document fails alone
    (``error``, or ``timeout`` past its own deadline), and a stop request is honoured between
    two documents. Every window runs alone in the tagger, so one call per document costs nothing.

    Args:
        stop: checked before each document; once true, the outcomes of the documents done so
            far (a prefix of ``docs``) are returned and the rest are left to the caller.
        cancelled: checked before each document and between its windows; once true (the job
            was cancelled) the running document and the rest end ``cancelled``.
        folded: fold Traditional characters before the model (:func:`annotate_text`).
        lexicon: the job's dictionary (:func:`annotate_text`).

    ``SoftTimeLimitExceeded`` always propagates (it subclasses ``Exception``).
    """
    outcomes = []
    for doc in docs:
        if stop():
            break
        if cancelled():
            outcomes.append(Outcome(doc.id, doc.n_chars, cancelled=True))
            continue
        try:
            outcomes.append(Outcome(doc.id, doc.n_chars, tuple(annotate_text(doc.text, tagger, settings,
                                                                             stop=cancelled, folded=folded,
                                                                             lexicon=lexicon))))
        except SoftTimeLimitExceeded:
            raise
        except Stopped:
            log.info("document %s abandoned: its job was cancelled", doc.ext_id)
            outcomes.append(Outcome(doc.id, doc.n_chars, cancelled=True))
        except Exception:
            outcomes.append(_failed(doc))
    return outcomes


def _failed(doc: ClaimedDocument) -> Outcome:
    exc = sys.exc_info()[1]
    reason = Reason.TIMEOUT if isinstance(exc, DeadlineExceeded) else Reason.ERROR
    log.warning("document %s failed (%s): %r", doc.ext_id, reason, exc)
    return Outcome(doc.id, doc.n_chars, (), error=f"{type(exc).__name__}: {exc}", reason=reason)
