"""A user dictionary: its file format, its checks and its canonical content (pure, no I/O).

A dictionary is a UTF-8 TSV, one entry per line::

    text<TAB>TYPE[<TAB>force|block[<TAB>alias|alias...]]

``force`` (the default) makes every occurrence of ``text`` an entity of ``TYPE``; ``block`` drops
the model's entity that is exactly ``text`` and of ``TYPE`` (``*``: of any type). The fourth
column holds aliases (other spellings of the same name), kept for corpus views. Blank lines and
lines starting with ``#`` are comments. How the worker applies one is ``worker.tagger.lexicon``.

The stored content is canonical (entries sorted, one form per line), so the same entries give the
same hash whatever their order, comments or line endings in the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from storage.core.errors import PermanentError

FORCE, BLOCK = "force", "block"
ANY_TYPE = "*"
#: Largest dictionary file accepted (bytes).
MAX_BYTES = 16 * 1024 * 1024
#: Longest entry text (characters): a name, not a paragraph.
MAX_TEXT = 200
#: Dictionary names: what a job and the CLI name them by.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}$")


@dataclass(frozen=True, slots=True)
class Term:
    """One dictionary entry."""

    text: str
    label: str  # an entity type; ANY_TYPE only for a block
    action: str = FORCE
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DictionaryRef:
    """One stored dictionary version, as a job records it."""

    id: int
    name: str
    version: int
    content_hash: str
    entries: int
    types: tuple[str, ...]
    owner: str | None
    created_at: float

    @property
    def label(self) -> str:
        """``name@version``: what a job shows as its dictionary."""
        return f"{self.name}@{self.version}"


class LexiconError(PermanentError):
    """A dictionary file that cannot be stored; ``line`` is 1-based (0: the file as a whole)."""

    def __init__(self, line: int, reason: str) -> None:
        self.line, self.reason = line, reason
        super().__init__(f"line {line}: {reason}" if line else reason)


def check_name(name: str) -> str:
    """``name`` if it is a valid dictionary name, else :class:`PermanentError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PermanentError(f"dictionary name {str(name)[:120]!r} must be 1-100 letters, digits, '.', '_' "
                             "or '-', starting with a letter or digit")
    return name


def parse(raw: bytes | str, *, labels: tuple[str, ...] | None = None) -> tuple[Term, ...]:
    """The entries of a dictionary file, checked, in canonical order (text, then type, then action).

    Args:
        raw: the file's bytes (UTF-8, an optional BOM) or text.
        labels: the entity types allowed (a model's); ``None``: any well-formed type.

    Raises:
        LexiconError: the first bad line (its number and why), or a file over :data:`MAX_BYTES`,
            not UTF-8, or with no entry. Nothing is returned for a file with any bad line.
    """
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_BYTES:
        raise LexiconError(0, f"the file has {size:,} bytes; the limit is {MAX_BYTES:,}")
    text = raw if isinstance(raw, str) else _decode(raw)
    terms: dict[tuple[str, str, str], Term] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        term = _parse_line(line, number, labels)
        key = (term.text, term.label, term.action)
        if key in terms and terms[key] != term:
            raise LexiconError(number, f"{term.text!r} {term.label} {term.action} is listed twice with other aliases")
        terms[key] = term
    if not terms:
        raise LexiconError(0, "the dictionary has no entries")
    forced: dict[str, str] = {}
    for t in terms.values():
        if t.action == FORCE and forced.setdefault(t.text, t.label) != t.label:
            raise LexiconError(0, f"{t.text!r} is forced as both {forced[t.text]} and {t.label}")
    for t in terms.values():
        if t.action == BLOCK and forced.get(t.text) is not None and t.label in (ANY_TYPE, forced[t.text]):
            raise LexiconError(0, f"{t.text!r} is both forced and blocked as {forced[t.text]}")
    return tuple(sorted(terms.values(), key=lambda t: (t.text, t.label, t.action)))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LexiconError(line, f"not UTF-8 (byte 0x{raw[exc.start]:02x})") from None


def _parse_line(line: str, number: int, labels: tuple[str, ...] | None) -> Term:
    cols = line.split("\t")
    if len(cols) > 4:
        raise LexiconError(number, f"{len(cols)} tab-separated columns; expected text, TYPE[, force|block[, aliases]]")
    text = cols[0].strip()
    if not text:
        raise LexiconError(number, "the entry's text is empty or whitespace")
    for value, what in [(cols[0], "text")] + [(c, "aliases") for c in cols[3:]]:
        bad = _BAD_CHAR.search(value)
        if bad is not None:
            code = ord(bad.group())
            kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a NUL" if code == 0 else "a control character"
            raise LexiconError(number, f"the {what} holds {kind} (U+{code:04X})")
    if len(text) > MAX_TEXT:
        raise LexiconError(number, f"the entry's text has {len(text)} characters; the limit is {MAX_TEXT}")
    if len(cols) < 2 or not cols[1].strip():
        raise LexiconError(number, f"{text!r} has no type (text<TAB>TYPE[<TAB>force|block])")
    label = cols[1].strip()
    action = cols[2].strip().lower() if len(cols) > 2 and cols[2].strip() else FORCE
    if action not in (FORCE, BLOCK):
        raise LexiconError(number, f"action {cols[2].strip()[:40]!r} is neither force nor block")
    if label == ANY_TYPE:
        if action == FORCE:
            raise LexiconError(number, f"{text!r}: a forced entry needs one type, not '*'")
    elif not _TYPE.match(label):
        raise LexiconError(number, f"type {label[:40]!r} is not an entity type name")
    elif labels is not None and label not in labels:
        raise LexiconError(number, f"type {label!r} is not one of the model's ({', '.join(labels)})")
    aliases = tuple(a.strip() for a in cols[3].split("|") if a.strip()) if len(cols) > 3 else ()
    if any(len(a) > MAX_TEXT for a in aliases):
        raise LexiconError(number, f"an alias is longer than {MAX_TEXT} characters")
    return Term(text, label, action, aliases)


def canonical(terms: tuple[Term, ...]) -> str:
    """The stored form of entries from :func:`parse`: one TSV line each, every column written."""
    return "".join(f"{t.text}\t{t.label}\t{t.action}\t{'|'.join(t.aliases)}\n" for t in terms)


def content_hash(content: str) -> str:
    """sha256 hex of a canonical dictionary (what a job records)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def types_of(terms: tuple[Term, ...]) -> tuple[str, ...]:
    """The entity types a dictionary names (``*`` excluded), sorted."""
    return tuple(sorted({t.label for t in terms if t.label != ANY_TYPE}))


def parse_canonical(content: str) -> tuple[Term, ...]:
    """Entries of stored (canonical) content; trusted, so not checked again."""
    out = []
    for line in content.splitlines():
        text, label, action, aliases = line.split("\t")
        out.append(Term(text, label, action, tuple(a for a in aliases.split("|") if a)))
    return tuple(out)
