"""Torch models as taggers: a torch INT8 artifact or a RaNER directory run through the production
:class:`~worker.tagger.tagger.Tagger` (windows + merge) on torch.

Workers never use this (they serve ONNX artifacts); conversion (smoothing calibration, parity
checks), training evaluation, benchmarks and tests do.
"""

from __future__ import annotations

from pathlib import Path

from worker.model.artifact import load_model
from worker.model.checkpoint import LoadedModel
from worker.model.torch_engine import TorchEngine, set_threads
from worker.tagger.tagger import DEFAULT_OVERLAP, Tagger


def torch_tagger(loaded: LoadedModel, *, max_length: int | None = None, overlap: int = DEFAULT_OVERLAP) -> Tagger:
    """A :class:`Tagger` over an already loaded torch model."""
    return Tagger(TorchEngine(loaded), max_length=max_length, overlap=overlap)


def load_torch_tagger(
    path: str | Path,
    *,
    int8: bool = True,
    engine: str = "",
    max_length: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    threads: int | None = None,
) -> Tagger:
    """A :class:`Tagger` over the torch artifact or RaNER directory at ``path``.

    Args:
        int8: quantize a RaNER directory after loading (artifacts are INT8 already).
        engine: torch's INT8 kernel library (see :func:`~worker.model.artifact.choose_engine`).
        threads: torch intra-op threads (``None``: torch's own setting).
    """
    if threads:
        set_threads(threads)
    return torch_tagger(load_model(path, int8=int8, engine=engine), max_length=max_length, overlap=overlap)
