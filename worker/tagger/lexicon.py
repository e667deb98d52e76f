"""A job's dictionary applied to one document's merged model entities (pure but for the matcher).

Rules (README, "Dictionaries"):

- **force**: every occurrence of a forced text is an entity of its type, score 1.0. Where forced
  occurrences overlap each other, the longest wins, then the earliest. A model entity that
  overlaps a chosen occurrence gives way to it; one with exactly its span and type is kept as
  one entity whose source is ``both``.
- **block**: a model entity whose text is a blocked text, of the blocked type (or any, ``*``), is
  dropped.
- A term that starts (ends) with an ASCII letter or digit matches only where the character before
  (after) it is not one, so ``Li`` is not found inside ``Lisbon``; Chinese text has no such edge.
- Everything else is untouched: entities away from dictionary terms are those of a run without it.

Matching runs over the text the model read (folded when the job folds, ``storage.core.fold``),
with the dictionary's texts folded the same way, so ``臺北`` in a Traditional document is found
by the entry ``台北`` and offsets stay the document's own. Multi-pattern search is
``pyahocorasick`` (one pass over the text for any number of entries).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ahocorasick

from storage.core.domain import SOURCE_BOTH, SOURCE_DICT, Entity
from storage.core.lexicon import ANY_TYPE, BLOCK, FORCE, Term

FORCED_SCORE = 1.0


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass(frozen=True)
class Lexicon:
    """A dictionary compiled for matching: build once per dictionary version (and fold) per process."""

    forced: ahocorasick.Automaton | None  # folded text -> (length, label, edge-checks)
    blocked: frozenset[tuple[str, str]]  # (folded text, type or '*')

    @classmethod
    def build(cls, terms: Sequence[Term], *, normalize: Callable[[str], str] = lambda s: s) -> Lexicon:
        """Compile ``terms``; ``normalize`` (e.g. the fold) is applied to every text, as to the
        documents it will be matched in."""
        auto = ahocorasick.Automaton()
        for t in terms:
            if t.action == FORCE:
                key = normalize(t.text)
                auto.add_word(key, (len(key), t.label, _ascii_alnum(key[0]), _ascii_alnum(key[-1])))
        blocked = frozenset((normalize(t.text), t.label) for t in terms if t.action == BLOCK)
        if len(auto):
            auto.make_automaton()
            return cls(auto, blocked)
        return cls(None, blocked)

    def occurrences(self, text: str) -> list[tuple[int, int, str]]:
        """Every forced occurrence in ``text`` as ``(start, end, type)``, overlapping ones included."""
        if self.forced is None or not text:
            return []
        out = []
        n = len(text)
        for last, (length, label, left_edge, right_edge) in self.forced.iter(text):
            start, end = last + 1 - length, last + 1
            if left_edge and start > 0 and _ascii_alnum(text[start - 1]):
                continue
            if right_edge and end < n and _ascii_alnum(text[end]):
                continue
            out.append((start, end, label))
        return out


def choose(occurrences: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping occurrences: the longest first, then the earliest; returned in text order."""
    starts: list[int] = []
    kept: list[tuple[int, int, str]] = []
    for occ in sorted(occurrences, key=lambda o: (o[0] - o[1], o[0])):
        i = bisect.bisect_left(starts, occ[0])
        if i > 0 and kept[i - 1][1] > occ[0]:
            continue  # the one before it ends inside it
        if i < len(kept) and kept[i][0] < occ[1]:
            continue  # the one after it starts inside it
        starts.insert(i, occ[0])
        kept.insert(i, occ)
    return kept


def apply(text: str, seen: str, entities: Sequence[Entity], lexicon: Lexicon) -> list[Entity]:
    """The document's entities once the dictionary is applied, in text order.

    Args:
        text: the document as stored (entity texts are taken from it).
        seen: the text the model and the matcher read (``text`` folded, or ``text``); same length.
        entities: the model's merged entities of ``text``.
    """
    forced = choose(lexicon.occurrences(seen))
    starts = [f[0] for f in forced]
    exact = {(s, e): label for s, e, label in forced}
    out: list[Entity] = [Entity(s, e, label, text[s:e], FORCED_SCORE, SOURCE_DICT) for s, e, label in forced]
    for ent in entities:
        if lexicon.blocked and ((seen[ent.start:ent.end], ent.label) in lexicon.blocked
                                or (seen[ent.start:ent.end], ANY_TYPE) in lexicon.blocked):
            continue
        if forced:
            if exact.get((ent.start, ent.end)) == ent.label:
                i = bisect.bisect_left(starts, ent.start)
                out[i] = Entity(ent.start, ent.end, ent.label, out[i].text, FORCED_SCORE, SOURCE_BOTH)
                continue
            i = bisect.bisect_right(starts, ent.start)
            if i > 0 and forced[i - 1][1] > ent.start:
                continue  # a forced occurrence starting at or before it reaches into it
            if i < len(forced) and forced[i][0] < ent.end:
                continue  # one starting inside it
        out.append(ent)
    out.sort(key=lambda e: (e.start, e.end))
    return out
