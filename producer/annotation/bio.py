"""Character-level BIO and CoNLL: one ``CHAR<TAB>TAG`` line per character (what
``shiti model train`` reads), a blank line where the text breaks a line and after each document.

``conll`` is the same with a ``-DOCSTART-<TAB>doc id`` line opening each document (the CoNLL-2003
document marker), so a file maps back to its documents; ``bio`` has no markers. Line breaks
(``\\n``, ``\\r\\n``, ``\\r``) are not written as characters: they end a sentence, and an entity that
spans one continues as a new entity on the next line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from producer.annotation.spans import Correction, CorrectionError, Span, checked

DOCSTART = "-DOCSTART-"
_BREAK = re.compile(r"\r\n|\r|\n")


def tags_of(length: int, spans: Iterable[Span]) -> list[str]:
    """One BIO tag per character of a text ``length`` long (spans must not overlap)."""
    tags = ["O"] * length
    for start, end, label in spans:
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def lines(text: str, spans: Sequence[Span], doc_id: str | None = None) -> Iterator[str]:
    """The lines (without newline) of one document: ``CHAR<TAB>TAG`` per character, a blank line at
    each line break and one at the end; a ``-DOCSTART-`` line first when ``doc_id`` is given."""
    if doc_id is not None:
        yield f"{DOCSTART}\t{doc_id}"
    tags = tags_of(len(text), spans)
    pos = 0
    for piece in [*_BREAK.finditer(text), None]:
        stop = piece.start() if piece else len(text)
        for i in range(pos, stop):
            tag = tags[i]
            if i == pos and tag.startswith("I-"):
                tag = "B-" + tag[2:]  # an entity that crossed a line break starts again here
            yield f"{text[i]}\t{tag}"
        if stop > pos or piece is None:
            yield ""
        pos = piece.end() if piece else stop


def spans_of(tags: Sequence[str], offset: int = 0) -> list[Span]:
    """Entities of one tag sequence (``B-X I-X...``; an ``I-X`` after anything but ``X`` starts
    one), shifted by ``offset``."""
    out: list[Span] = []
    start, label = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        kind, _, name = tag.partition("-")
        if kind == "I" and name == label and start >= 0:
            continue
        if start >= 0:
            out.append((offset + start, offset + i, label))
            start, label = -1, ""
        if kind in ("B", "I") and name:
            start, label = i, name
    return out


def read_conll(source: Iterable[str], labels: Sequence[str] | None = None) -> Iterator[Correction]:
    """Documents of a character-level CoNLL file (``-DOCSTART-`` lines open them; sentences of one
    document are joined by ``\\n``). A file without markers is one document per sentence.

    Raises:
        CorrectionError: a line that is not ``CHAR<TAB>TAG``, a tag not ``O``/``B-X``/``I-X``, or a
            type not in ``labels`` (the task is ``line N``).
    """
    doc_id: str | None = None
    start_line = 1
    sentences: list[tuple[str, list[str]]] = []
    chars: list[str] = []
    tags: list[str] = []
    marked = False

    def document() -> Correction | None:
        if chars:
            sentences.append(("".join(chars), list(tags)))
        if not sentences:
            return None
        text, spans, pos = "", [], 0
        for i, (sent, sent_tags) in enumerate(sentences):
            if i:
                text += "\n"
                pos += 1
            spans += spans_of(sent_tags, pos)
            text += sent
            pos += len(sent)
        task = f"line {start_line}" + (f" ({doc_id})" if doc_id is not None else "")
        return Correction(task=task, text=text, spans=checked(task, text, spans, labels), doc_id=doc_id)

    for lineno, raw in enumerate(source, 1):
        line = raw.rstrip("\n")
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith(DOCSTART):
            marked = True
            done = document()
            if done:
                yield done
            sentences, chars, tags = [], [], []
            doc_id = line[len(DOCSTART):].lstrip("\t ") or None
            start_line = lineno
            continue
        if not line:
            if chars:
                sentences.append(("".join(chars), list(tags)))
                chars, tags = [], []
                if not marked:
                    done = document()
                    if done:
                        yield done
                    sentences, start_line = [], lineno + 1
            continue
        ch, sep, tag = line.rpartition("\t")
        if not sep or len(ch) != 1:
            raise CorrectionError(f"line {lineno}", f"expected 'CHAR<TAB>TAG', got {line[:40]!r}")
        tag = tag.strip() or "O"
        kind, _, name = tag.partition("-")
        if tag != "O" and (kind not in ("B", "I") or not name):
            raise CorrectionError(f"line {lineno}", f"tag {tag!r} is not O, B-TYPE or I-TYPE")
        if labels is not None and name and name not in labels:
            raise CorrectionError(f"line {lineno}", f"label {name!r} is not one the model tags ({', '.join(labels)})")
        chars.append(ch)
        tags.append(tag)
    done = document()
    if done:
        yield done


def realign(task: str, stored: str, text: str, spans: Sequence[Span]) -> tuple[Span, ...]:
    """``spans`` of ``text`` (a document read back from CoNLL, its lines joined by ``\\n``) moved
    onto ``stored`` (the document as shiti holds it, with its own line breaks).

    Raises:
        CorrectionError: the two differ in anything but their line breaks.
    """
    keep = [i for i, ch in enumerate(stored) if ch not in "\r\n"]
    mine = [i for i, ch in enumerate(text) if ch not in "\r\n"]
    if len(keep) != len(mine) or any(stored[a] != text[b] for a, b in zip(keep, mine)):
        raise CorrectionError(task, "its characters are not the stored document's text")
    where = {b: a for a, b in zip(keep, mine)}
    out = []
    for start, end, label in spans:
        out.append((where[start], where[end - 1] + 1, label))
    return tuple(out)
