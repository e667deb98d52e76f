"""Label Studio: tasks with pre-annotations (``predictions``) for a Text + Labels project, the
labeling config they go with, and reading the project's JSON export back.

A region is ``{"from_name": "label", "to_name": "text", "type": "labels", "value": {"start",
"end", "text", "labels": [TYPE]}}`` with code-point offsets (Label Studio counts ``[...text]``). A
task's corrections are its newest annotation that was not cancelled; a task nobody annotated is
skipped unless its prediction is accepted as it stands (``accept_predictions``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from producer.annotation.offsets import Convention, OffsetError, from_tool
from producer.annotation.spans import Correction, CorrectionError, Span, checked, region_text_matches

FROM_NAME, TO_NAME = "label", "text"


def label_config(labels: Sequence[str]) -> str:
    """The labeling config of a project that reads these tasks (paste it under Settings →
    Labeling Interface → Code)."""
    inner = "\n".join(f"    <Label value={quoteattr(label)}/>" for label in labels)
    return (f'<View>\n  <Labels name="{FROM_NAME}" toName="{TO_NAME}">\n{inner}\n  </Labels>\n'
            f'  <Text name="{TO_NAME}" value="$text" granularity="symbol"/>\n</View>\n')


def task(text: str, doc_id: str, entities: Sequence[Mapping[str, Any]], *, model_version: str,
         job: str) -> dict[str, Any]:
    """One task: the document in ``data`` (its shiti id and job beside the text) and the job's
    entities as one prediction (its score: the least certain entity's)."""
    result = [{"id": f"e{i}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
               "value": {"start": e["start"], "end": e["end"], "text": e["text"], "labels": [e["label"]]},
               "score": e["score"]} for i, e in enumerate(entities)]
    prediction: dict[str, Any] = {"model_version": model_version, "result": result}
    if entities:
        prediction["score"] = min(e["score"] for e in entities)
    return {"data": {"text": text, "doc_id": doc_id, "job": job}, "predictions": [prediction]}


def _name(item: Mapping[str, Any], index: int) -> str:
    return str(item.get("id", f"#{index + 1}"))


def _regions(name: str, text: str, result: Any, convention: Convention) -> list[Span]:
    if not isinstance(result, list):
        raise CorrectionError(name, "its result is not a list of regions")
    spans: list[Span] = []
    for region in result:
        if not isinstance(region, dict) or region.get("type") not in ("labels", None):
            continue  # relations, choices and other controls carry no span
        value = region.get("value")
        if not isinstance(value, dict) or not {"start", "end", "labels"} <= value.keys():
            raise CorrectionError(name, "a region lacks value.start, value.end or value.labels "
                                        "(an export of another Label Studio version or config?)")
        start, end, labels = value["start"], value["end"], value["labels"]
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise CorrectionError(name, f"region offsets {start!r}..{end!r} are not character positions")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            raise CorrectionError(name, f"region {start}..{end} has {labels!r}: one label per region")
        try:
            start, end = from_tool(text, start, convention), from_tool(text, end, convention)
        except OffsetError as exc:
            raise CorrectionError(name, f"region {start}..{end}: {exc}") from None
        span = (start, end, labels[0])
        if 0 <= start < end <= len(text):  # out of range: checked() names it
            region_text_matches(name, text, span, value.get("text"))
        spans.append(span)
    return spans


def read_export(items: Any, labels: Sequence[str] | None, *, accept_predictions: bool = False,
                convention: Convention = "codepoint") -> Iterator[Correction | str]:
    """The corrections of a Label Studio JSON export (a list of tasks; the JSON-MIN form, with
    ``text`` and ``label`` at the top, is read too). Yields a :class:`Correction` per annotated
    task and the task's name for each one skipped (nobody annotated it).

    Raises:
        CorrectionError: a task without its text, with a malformed or mismatched region, a label not
            in ``labels``, or overlapping regions.
    """
    if not isinstance(items, list):
        raise CorrectionError("-", "a Label Studio export is a JSON list of tasks")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise CorrectionError(f"#{index + 1}", "not a JSON object")
        name = _name(item, index)
        if "data" not in item and "text" in item:  # JSON-MIN
            text, doc_id = item["text"], item.get("doc_id")
            result: Any = [{"type": "labels", "value": v} for v in item.get("label") or []]
        else:
            data = item.get("data")
            if not isinstance(data, dict) or not isinstance(data.get(TO_NAME), str):
                raise CorrectionError(name, "no data.text (a task of another labeling config?)")
            text, doc_id = data[TO_NAME], data.get("doc_id")
            annotations, predictions = item.get("annotations") or [], item.get("predictions") or []
            if not isinstance(annotations, list) or not isinstance(predictions, list):
                raise CorrectionError(name, "its annotations and predictions must be lists")
            done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
            if done:
                # The newest by its time stamp; among equals (or none), the last in the list.
                _, newest = max(enumerate(done), key=lambda p: (str(p[1].get("updated_at") or p[1].get("created_at")
                                                                     or ""), p[0]))
                result = newest.get("result")
            elif accept_predictions and predictions:
                result = predictions[-1].get("result") if isinstance(predictions[-1], dict) else None
            else:
                yield name
                continue
        if not isinstance(text, str):
            raise CorrectionError(name, "its text is not a string")
        if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, str | int)):
            raise CorrectionError(name, "its doc_id is not a string")
        spans = checked(name, text, _regions(name, text, result, convention), labels)
        yield Correction(task=name, text=text, spans=spans, doc_id=None if doc_id is None else str(doc_id))
