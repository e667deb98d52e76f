"""Load a tagger for a model directory: an ONNX artifact on onnxruntime, the one format workers
serve (no torch). A torch artifact or RaNER directory is refused with the command that converts
it; ``worker.model.torch_tagger`` runs those, for conversion, evaluation and tests."""

from __future__ import annotations

from pathlib import Path

from worker.tagger.errors import ModelLoadError
from worker.tagger.onnx_model import is_onnx_artifact, load_onnx_model
from worker.tagger.tagger import DEFAULT_OVERLAP, Tagger


def load_tagger(path: str | Path, *, max_length: int | None = None, overlap: int = DEFAULT_OVERLAP,
                threads: int | None = None) -> Tagger:
    """A :class:`Tagger` over the ONNX artifact at ``path``.

    Args:
        max_length: window size in tokens, specials included (default and cap: the model's).
        overlap: tokens two neighbouring windows share.
        threads: onnxruntime intra-op threads (``None``: one).

    Raises:
        ModelLoadError: ``path`` is not an ONNX artifact (the message says how to make one), or
            its files do not load.
    """
    if not is_onnx_artifact(path):
        raise ModelLoadError(f"{path} is not an ONNX artifact, the one format workers serve: quantize it first: "
                             f"shiti model quantize {path} --out <dir>")
    return Tagger(load_onnx_model(path, threads=threads or 1), max_length=max_length, overlap=overlap)
