"""The pool child's model state: one tagger, loaded once at ``worker_process_init``, never per task."""

from __future__ import annotations

import functools
import logging
import time

from storage.catalog import resolve
from storage.core.settings import Settings
from worker.pipeline import WARMUP_TEXT, TaggerLike, load_configured_tagger

log = logging.getLogger(__name__)
_TAGGER: TaggerLike | None = None


def init_child(settings: Settings) -> None:
    """Load the tagger once in this process and warm it up (``worker_process_init``)."""
    global _TAGGER
    t0 = time.monotonic()
    _TAGGER = load_configured_tagger(settings)
    _TAGGER.annotate([WARMUP_TEXT])
    log.info("model %s ready in %.1f s", settings.model, time.monotonic() - t0)


@functools.cache
def served_hash(settings: Settings) -> str:
    """The content hash of the model this worker serves (once per process)."""
    return resolve(settings).content_hash


def get_tagger(settings: Settings) -> TaggerLike:
    """This process's tagger (loaded now if ``init_child`` did not run, e.g. solo pool)."""
    if _TAGGER is None:
        init_child(settings)
    assert _TAGGER is not None
    return _TAGGER
