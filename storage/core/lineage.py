"""Where a model's training data came from: the sidecar a training file made of corrections
carries (``shiti data import --out FILE`` writes ``FILE.lineage.json``), which ``shiti model
train`` reads into the model's ``lineage.json`` and ``shiti model quantize`` into the artifact's
manifest (``trained_on``)."""

from __future__ import annotations

from pathlib import Path

#: Appended to a training file's name: its lineage sidecar.
SIDECAR_SUFFIX = ".lineage.json"
#: The sidecar's ``format``.
CORRECTIONS_FORMAT = "shiti-corrections/1"


def sidecar(path: str | Path) -> Path:
    """The lineage sidecar of training file ``path``."""
    return Path(str(path) + SIDECAR_SUFFIX)
