"""A corrected document and the checks every tool's corrections go through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.core.errors import PermanentError

#: ``(start, end, label)``: end-exclusive code-point offsets.
Span = tuple[int, int, str]


class CorrectionError(PermanentError):
    """One task of an annotation export cannot be used; ``task`` names it as the tool does."""

    def __init__(self, task: str, why: str) -> None:
        super().__init__(f"task {task}: {why}")
        self.task = task
        self.why = why


@dataclass(frozen=True)
class Correction:
    """One annotated document: its text and the entities the annotator left in it."""

    task: str  # the tool's task id (or line number), for error messages
    text: str
    spans: tuple[Span, ...]
    doc_id: str | None = None  # the shiti document id, when the task carries it


def checked(task: str, text: str, spans: Iterable[Span], labels: Sequence[str] | None) -> tuple[Span, ...]:
    """``spans`` sorted, after checking each is inside ``text``, not empty, of a type in ``labels``
    (None: any), and that no two overlap (BIO cannot say that).

    Raises:
        CorrectionError: the first span that breaks a rule, named.
    """
    out = sorted(spans)
    for start, end, label in out:
        if not 0 <= start < end <= len(text):
            raise CorrectionError(task, f"span {start}..{end} is outside the text (0..{len(text)}) or empty")
        if labels is not None and label not in labels:
            raise CorrectionError(task, f"label {label!r} at {start}..{end} is not one the model tags "
                                        f"({', '.join(labels)})")
    for (s1, e1, l1), (s2, e2, l2) in zip(out, out[1:]):
        if s2 < e1:
            raise CorrectionError(task, f"spans {s1}..{e1} {l1} and {s2}..{e2} {l2} overlap")
    return tuple(out)


def region_text_matches(task: str, text: str, span: Span, claimed: str | None) -> None:
    """Refuse a region whose own ``text`` is not the document's text at its offsets (offsets that
    belong to another text or another counting convention).

    Raises:
        CorrectionError: they differ.
    """
    start, end, _ = span
    if claimed is not None and text[start:end] != claimed:
        raise CorrectionError(task, f"span {start}..{end} says {claimed!r} but the text there is "
                                    f"{text[start:end]!r} (offsets of another text or tool version?)")
