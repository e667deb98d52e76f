"""Canonical entities: which spellings of a name count as one entity in a corpus's views (pure).

Two mentions are the same canonical entity when they have the same type and the same
:func:`canonical` form: the Traditional -> Simplified fold (``storage.core.fold``, so 臺灣 and 台湾
meet), full-width ASCII to half-width (ＩＢＭ and IBM), one middle dot for the several that
transliterated names are written with (迈克尔·乔丹, 迈克尔・乔丹), and then a user dictionary's
aliases (北大 -> 北京大学), which map one form to its entry's.

The fold only ever merges spellings; no form is split or rewritten beyond these tables, so a view
can always list the exact surface forms a group holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from storage.core.fold import fold
from storage.core.lexicon import ANY_TYPE, BLOCK, Term

# Full-width ASCII (U+FF01..U+FF5E) to ASCII, the ideographic space to a space, and the middle
# dots names are written with (katakana, bullet, hyphenation point, half-width katakana) to U+00B7.
_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WIDTH.update({0x3000: 0x20, 0x30FB: 0xB7, 0x2022: 0xB7, 0x2027: 0xB7, 0xFF65: 0xB7, 0x2219: 0xB7})


def width_fold(text: str) -> str:
    """``text`` with full-width ASCII made half-width and every name middle dot made U+00B7."""
    return text.translate(_WIDTH)


def canonical(text: str) -> str:
    """The form spellings of one name share: Traditional folded to Simplified, then width folded,
    surrounding whitespace dropped."""
    return width_fold(fold(text)).strip()


@dataclass(frozen=True)
class Aliases:
    """A dictionary's aliases as a look-up: (type, canonical form) -> (canonical form of the
    entry, the entry's own text). Built by :func:`aliases_of`."""

    forms: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # canonical form -> the entries' canonical forms it is a spelling of, under any type
    by_form: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def resolve(self, label: str, text: str) -> tuple[str, str | None]:
        """The canonical form a mention of ``text`` as ``label`` belongs to, and the dictionary
        entry's text when a dictionary names it (None: no entry does)."""
        form = canonical(text)
        hit = self.forms.get((label, form))
        return (hit[0], hit[1]) if hit is not None else (form, None)

    def targets_of(self, form: str) -> frozenset[str]:
        """The entries' canonical forms the canonical form ``form`` is an alias or text of."""
        return self.by_form.get(form, frozenset())


NO_ALIASES = Aliases()


def aliases_of(terms: Iterable[Term]) -> Aliases:
    """The look-up of a dictionary's entries and their aliases.

    A forced entry's text and each of its aliases map to the entry, under the entry's type. A
    block entry names no entity, so its aliases are ignored; an alias of type ``*`` does not
    exist (forced entries have one type). When two entries claim one form, the first in the
    dictionary's canonical order keeps it, so the look-up does not depend on file order.
    """
    forms: dict[tuple[str, str], tuple[str, str]] = {}
    for term in terms:
        if term.action == BLOCK or term.label == ANY_TYPE:
            continue
        target = canonical(term.text)
        for spelling in (term.text, *term.aliases):
            forms.setdefault((term.label, canonical(spelling)), (target, term.text))
    by_form: dict[str, set[str]] = {}
    for (_, form), (target, _) in forms.items():
        by_form.setdefault(form, set()).add(target)
    return Aliases(forms, {f: frozenset(t) for f, t in by_form.items()})
