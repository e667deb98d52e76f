"""Model directories for the per-job model tests: copies of the shipped ONNX artifact, optionally
changed so that they tag differently (and so hash differently)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from storage.core.settings import DEFAULT_MODEL

NO_ORG = -10_000.0  # a start score no path survives


def copy_shipped(out: Path) -> Path:
    """A byte-identical copy of the shipped model at ``out`` (same content hash)."""
    shutil.copytree(DEFAULT_MODEL, out)
    return out


def without_org(out: Path) -> Path:
    """The shipped model with ORG made impossible (its CRF can never enter B-ORG or I-ORG), its
    manifest updated: a valid, different model whose output differs only where ORG was found."""
    copy_shipped(out)
    labels = json.loads((out / "labels.json").read_text())
    crf = json.loads((out / "crf.json").read_text())
    for tag in ("B-ORG", "I-ORG"):
        j = labels.index(tag)
        crf["start"][j] = NO_ORG
        for row in crf["transitions"]:
            row[j] = NO_ORG
    (out / "crf.json").write_text(json.dumps(crf))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["crf.json"] = hashlib.sha256((out / "crf.json").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (out / "MODEL_CARD.md").write_text("# shiti-zh-small without ORG (a test variant)\n")
    return out
