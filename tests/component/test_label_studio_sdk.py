"""Label Studio's own SDK reads shiti's tasks (fixtures made by scripts/label_studio_check.py
with label-studio-sdk 2.1.2): the committed tasks are exactly what shiti writes today, their
predictions passed the SDK's validation against the committed labeling config, and the SDK's
JSON-MIN conversion of them imports back to the same entities at the same offsets."""

from __future__ import annotations

from pathlib import Path

from producer.annotation.label_studio import label_config
from producer.corrections import read_corrections
from producer.review import render
from storage.core.views import ExportRecord
from tests.component.test_corrections import FOUND, TEXTS

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "label_studio"
JOB = "fixture"


def records() -> list[ExportRecord]:
    out: list[ExportRecord] = []
    for doc_id, text in TEXTS.items():
        ents = [{"start": text.index(w), "end": text.index(w) + len(w), "label": lab, "text": w, "score": s,
                 "source": "model"} for w, lab, s in FOUND.get(doc_id, [])]
        out.append({"doc_id": doc_id, "state": "done", "length": len(text), "entities": ents, "text": text,
                    "model": "shiti-zh-small", "model_hash": "0" * 64, "fold": None, "dictionary": None,
                    "dictionary_hash": None})  # type: ignore[typeddict-item]
    return out


def test_the_fixture_is_what_shiti_writes() -> None:
    written = "".join(render(records(), "label-studio", job_id=JOB))
    assert written == (HERE / "tasks.json").read_text(encoding="utf-8")
    assert label_config(["PER", "LOC", "ORG"]) == (HERE / "label_config.xml").read_text(encoding="utf-8")


def test_the_sdks_conversion_imports_back_to_the_same_entities() -> None:
    found, skipped = read_corrections((HERE / "sdk_json_min.json").read_bytes(), "label-studio", ["PER", "LOC", "ORG"])
    assert not skipped
    got = {c.doc_id: list(c.spans) for c in found}
    want = {r["doc_id"]: [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in records()}
    assert got == want
    assert {c.doc_id: c.text for c in found} == TEXTS  # texts (emoji, full-width, \r\n) unchanged by the SDK
