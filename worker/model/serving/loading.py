"""Load a tagger for a model directory: an ONNX artifact (onnxruntime, what workers serve; no torch)
or a torch model (a torch INT8 artifact or a RaNER directory; torch is imported only for those)."""

from __future__ import annotations

from pathlib import Path

from worker.model.serving.tagger import DEFAULT_OVERLAP, Tagger


def load_tagger(
    path: str | Path,
    *,
    max_length: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    int8: bool = True,
    engine: str = "",
    threads: int | None = None,
) -> Tagger:
    """A :class:`Tagger` over an ONNX artifact (onnxruntime, no torch), a torch INT8 artifact or a
    RaNER directory (torch; quantized at load unless ``int8=False``).

    Args:
        engine: torch's INT8 kernel library for torch models (see
            :func:`~worker.model.conversion.artifact.choose_engine`); ignored for ONNX artifacts.
        threads: intra-op threads (onnxruntime session, or torch for torch models; ``None``: one for
            onnxruntime, torch's own setting otherwise).
    """
    from worker.model.serving.onnx_model import is_onnx_artifact, load_onnx_model

    if is_onnx_artifact(path):
        return Tagger(load_onnx_model(path, threads=threads or 1), max_length=max_length, overlap=overlap)
    from worker.model.conversion.artifact import load_model  # torch
    from worker.model.conversion.torch_engine import set_threads

    if threads:
        set_threads(threads)
    return Tagger(load_model(path, int8=int8, engine=engine), max_length=max_length, overlap=overlap)
