"""The job's dictionary in the worker child: loaded from SQL once per version and fold, then cached.

A stored dictionary version never changes, so a compiled :class:`~worker.tagger.lexicon.Lexicon`
is cached by its content hash (the same entries in two databases compile once) and the fold.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from storage.core.fold import fold
from storage.core.lexicon import content_hash, parse_canonical
from storage.core.errors import PermanentError
from storage.sql import dictionaries, repo
from storage.sql.db import Database
from worker.tagger.lexicon import Lexicon

log = logging.getLogger(__name__)
# Compiled dictionaries kept per child; a 100,000-entry one is tens of MiB (bench/dictionary.py).
CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, bool], Lexicon] = OrderedDict()


def job_lexicon(db: Database, recipe: repo.JobRecipe, *, folded: bool) -> Lexicon | None:
    """The compiled dictionary a job recorded (None: it has none).

    Raises:
        PermanentError: the job's dictionary row is gone or no longer hashes to what the job
            recorded (the job's documents then fail instead of being tagged without it).
    """
    if recipe.dictionary_id is None or recipe.dictionary_hash is None:
        return None
    key = (recipe.dictionary_hash, folded)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    content = dictionaries.dictionary_content(db, recipe.dictionary_id)
    if content is None or content_hash(content) != recipe.dictionary_hash:
        raise PermanentError(f"dictionary {recipe.dictionary_id} is missing or changed since the job recorded it")
    lexicon = Lexicon.build(parse_canonical(content), normalize=fold if folded else lambda s: s)
    _cache[key] = lexicon
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    log.info("dictionary %s compiled (fold %s)", recipe.dictionary_hash[:12], folded)
    return lexicon
