"""doccano (sequence labeling): JSONL, one document per line with ``label`` as
``[[start, end, TYPE], ...]`` in UTF-16 code units (JavaScript string indices); a project with
relations exports ``entities`` (``{"start_offset", "end_offset", "label"}``) instead. Extra keys of
an imported line (shiti's ``doc_id`` and ``job``) come back in its export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from producer.annotation.offsets import Convention, OffsetError, from_tool, to_tool
from producer.annotation.spans import Correction, CorrectionError, Span, checked


def record(text: str, doc_id: str, entities: Sequence[Mapping[str, Any]], *, job: str,
           convention: Convention = "utf16") -> dict[str, Any]:
    """One JSONL line's object for doccano's import."""
    return {"text": text, "label": [[to_tool(text, e["start"], convention), to_tool(text, e["end"], convention),
                                     e["label"]] for e in entities], "doc_id": doc_id, "job": job}


def _span(name: str, text: str, start: Any, end: Any, label: Any, convention: Convention) -> Span:
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str)) or \
            isinstance(start, bool) or isinstance(end, bool):
        raise CorrectionError(name, f"label [{start!r}, {end!r}, {label!r}] is not [start, end, TYPE]")
    try:
        return from_tool(text, start, convention), from_tool(text, end, convention), label
    except OffsetError as exc:
        raise CorrectionError(name, f"span {start}..{end}: {exc}") from None


def read_export(lines: Iterable[str], labels: Sequence[str] | None, *,
                convention: Convention = "utf16") -> Iterator[Correction]:
    """The corrections of a doccano JSONL export.

    Raises:
        CorrectionError: a line that is not a JSON object with ``text``, a malformed span, one
            outside the text or splitting a character, a label not in ``labels``, overlaps.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorrectionError(f"line {lineno}", f"not JSON ({exc.msg})") from None
        name = f"line {lineno}" + (f" (id {item['id']})" if isinstance(item, dict) and "id" in item else "")
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise CorrectionError(name, "no text")
        text = item["text"]
        raw: list[Span] = []
        if "entities" in item and "label" not in item:
            if not isinstance(item["entities"] or [], list):
                raise CorrectionError(name, "entities is not a list")
            for e in item["entities"] or []:
                if not isinstance(e, dict):
                    raise CorrectionError(name, "an entity is not an object")
                raw.append(_span(name, text, e.get("start_offset"), e.get("end_offset"), e.get("label"), convention))
        else:
            found = item.get("label", [])
            if not isinstance(found, list):
                raise CorrectionError(name, "label is not a list of [start, end, TYPE]")
            for e in found:
                if not isinstance(e, list) or len(e) != 3:
                    raise CorrectionError(name, f"label {e!r} is not [start, end, TYPE]")
                raw.append(_span(name, text, e[0], e[1], e[2], convention))
        doc_id = item.get("doc_id")
        if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, str | int)):
            raise CorrectionError(name, "its doc_id is not a string")
        yield Correction(task=name, text=text, spans=checked(name, text, raw, labels),
                         doc_id=None if doc_id is None else str(doc_id))
