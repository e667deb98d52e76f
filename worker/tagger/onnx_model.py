"""Serving an ONNX artifact with onnxruntime: no torch, no transformers.

An ONNX artifact directory holds ``model.onnx`` (encoder + output Linear, INT8 MatMuls),
``crf.json`` (start/end/transition scores), ``vocab.txt``, ``tokenizer_config.json``,
``labels.json``, ``config.json`` (the encoder's shape) and ``manifest.json``, which records
the sha256 of every other file; loading checks them all, so a truncated, swapped or edited
file is named before a worker takes a task. :mod:`worker.model.onnx_export` writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from storage.catalog import SERVED_KIND, sha256_file  # the one file hash, the one served kind
from worker.tagger.charvocab import CharVocab
from worker.tagger.encoding import Encoder, WordEncoder, bert_wordpiece, read_tokenizer_config, read_vocab
from worker.tagger.errors import ModelLoadError
from worker.tagger.jsonfile import read_json

ONNX_FORMAT = 2  # manifest format_version of ONNX artifacts (torch artifacts are 1)
ONNX_KIND = SERVED_KIND
GRAPH = "model.onnx"
ONNX_FILES = (GRAPH, "crf.json", "vocab.txt", "tokenizer_config.json", "labels.json", "config.json")


def is_onnx_artifact(path: str | Path) -> bool:
    """Whether ``path`` is an ONNX artifact directory (its manifest says so)."""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("kind") == ONNX_KIND
    except ValueError:
        return False


def verify_files(path: str | Path, *, hashes_checked: bool = False) -> dict[str, Any]:
    """Check an ONNX artifact's files against its manifest without loading the graph (cheap: a
    worker parent runs it before starting its pool); returns the manifest.

    Args:
        hashes_checked: the caller already compared every listed file with its sha256
            (``storage.catalog.resolve`` does): check the format and the file list only.

    Raises:
        ModelLoadError: not a format-2 ONNX artifact, a file missing, or one the manifest did
            not hash (changed or corrupt), each named.
    """
    path = Path(path)
    manifest = read_json(path / "manifest.json")
    if manifest.get("kind") != ONNX_KIND or manifest.get("format_version") != ONNX_FORMAT:
        raise ModelLoadError(f"{path}/manifest.json: not a format-{ONNX_FORMAT} ONNX artifact")
    hashes = manifest.get("files") or {}
    for name in ONNX_FILES:
        if not (path / name).is_file():
            raise ModelLoadError(f"{path}: not a complete ONNX artifact, missing {name}")
        if name not in hashes:
            raise ModelLoadError(f"{path}/manifest.json: no sha256 for {name}")
        if not hashes_checked and sha256_file(path / name) != hashes[name]:
            raise ModelLoadError(f"{path}/{name}: sha256 does not match the manifest (changed or corrupt)")
    return manifest  # type: ignore[no-any-return]


class OnnxModel:
    """An ONNX artifact loaded into an onnxruntime session (a tagger :class:`~worker.tagger.tagger.Engine`)."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        """Load and check the artifact at ``path``.

        Raises:
            ModelLoadError: a file is missing, unreadable, corrupt or not the one the manifest
                hashed, or the graph, labels and CRF disagree on the number of labels.
        """
        self.source = path = Path(path)
        self.manifest = manifest = verify_files(path)
        self.labels: list[str] = read_json(path / "labels.json", kind=list)
        self.max_length = int(manifest.get("max_length", 512))
        lower, char_mode = read_tokenizer_config(path)
        self.char_mode = char_mode
        self.char_vocab: CharVocab | None = None
        self.word_encoder: Encoder | None = None
        try:
            if char_mode:
                self.char_vocab = CharVocab.from_file(path / "vocab.txt", lower=lower)
            else:
                self.word_encoder = WordEncoder(bert_wordpiece(read_vocab(path / "vocab.txt"), lower=lower))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}/vocab.txt: cannot build the tokenizer ({exc})") from exc
        n = len(self.labels)
        self._session = _session(path / GRAPH, threads, list(manifest.get("disabled_optimizers", [])))
        out = self._session.get_outputs()[0].shape
        if not isinstance(out[-1], int) or out[-1] != n:
            raise ModelLoadError(f"{path}/{GRAPH}: the graph emits {out[-1]} labels, labels.json has {n}")
        crf = read_json(path / "crf.json")
        try:
            self.crf = tuple(np.asarray(crf[k], dtype=np.float32) for k in ("start", "end", "transitions"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{path}/crf.json: expected start, end and transitions ({exc})") from exc
        # Entity scores: span marginals through this map (worker/model/calibrate.py fits it).
        self.score_platt = _platt(crf.get("score_calibration"), path)
        if [a.shape for a in self.crf] != [(n,), (n,), (n, n)]:
            raise ModelLoadError(f"{path}/crf.json: shapes {[a.shape for a in self.crf]} do not fit {n} labels")

    def token_emissions(self, ids: np.ndarray) -> np.ndarray:
        """(T,) int64 token ids of one window -> (T, labels) float32 emissions of every token."""
        return self._session.run(None, {"input_ids": ids[None]})[0][0]  # type: ignore[no-any-return]


def _platt(value: Any, path: Path) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        a, b = float(value["a"]), float(value["b"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}/crf.json: score_calibration needs numbers a and b ({exc})") from exc
    if not (a > 0 and np.isfinite(a) and np.isfinite(b)):
        raise ModelLoadError(f"{path}/crf.json: score_calibration a must be positive and b finite")
    return a, b


def _session(graph: Path, threads: int, disabled: list[str]) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # warnings about hardware-specific fusions are not the user's concern
    try:
        return ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled or None)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ModelLoadError(f"{graph}: onnxruntime cannot load it ({str(exc).strip()[:300]})") from exc


def load_onnx_model(path: str | Path, *, threads: int = 1) -> OnnxModel:
    """Load an ONNX artifact (see :class:`OnnxModel`)."""
    return OnnxModel(path, threads=threads)
