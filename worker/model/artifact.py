"""INT8 model artifacts: quantize once, load many times without the FP32 model.

Dynamic INT8 (``quantize_dynamic``) is applied to the encoder's Linear layers
with per-channel weight scales; the word-embedding table is stored as row-wise INT8
(:mod:`worker.model.qembed`, three quarters of the file otherwise); position
embeddings, LayerNorms, the small output Linear and the CRF stay float (they are a
tiny share of the compute, and keeping the output layer float keeps entity scores
close to FP32).

An artifact directory holds ``model.pt`` (the quantized state dict),
``config.json``, ``vocab.txt``, ``tokenizer_config.json``, ``labels.json`` and
``manifest.json``. Loading builds the skeleton on the ``meta`` device, swaps in
empty quantized Linear modules and assigns the saved tensors, so the FP32
weights are never materialized.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from worker.model.checkpoint import (
    LoadedModel,
    _materialize_buffers,
    check_state,
    load_raner_dir,
    read_bert_config,
    text_front_end,
)
from worker.tagger.errors import ModelLoadError
from worker.tagger.heap import file_mappings, release_pages, trim
from worker.tagger.onnx_model import sha256_file
from worker.model.qembed import FLOAT_ROWS, INT8_ROWS, add_int8_embedding_slot, quantize_word_embeddings
from worker.model.smooth import DEFAULT_ALPHA, add_scale_slots, ffn_input_absmax, smooth_ffn
from worker.model.tagnet import TaggerNet

FORMAT_VERSION = 1
# State-dict key suffix under which a dynamic INT8 Linear saves its (qint8 weight, bias) tuple.
PACKED = "._packed_params._packed_params"
ARTIFACT_FILES = ("model.pt", "config.json", "vocab.txt", "tokenizer_config.json", "labels.json", "manifest.json")


def quantize_model(model: nn.Module, *, keep_float: Sequence[str] = (), engine: str = "",
                   int8_embeddings: bool = True) -> nn.Module:
    """Quantize the encoder's Linear layers to dynamic INT8 in place; returns ``model``.

    Args:
        keep_float: encoder module names (e.g. ``encoder.layer.5.output.dense``) left in FP32;
            a few outlier-heavy layers cost most of the INT8 accuracy loss of small encoders.
        engine: INT8 kernel library (see :func:`choose_engine`).
        int8_embeddings: store the word embeddings as row-wise INT8 too (:mod:`~worker.model.qembed`).
    """
    choose_engine(engine)
    model.eval()
    names = [n for n, m in model.encoder.named_modules() if isinstance(m, nn.Linear) and n not in set(keep_float)]
    quantize_dynamic(model.encoder, {n: per_channel_dynamic_qconfig for n in names}, dtype=torch.qint8, inplace=True)
    if int8_embeddings:
        quantize_word_embeddings(model)
    return model


ONEDNN_CACHE = 16  # oneDNN kernels kept per process (see choose_engine)


def choose_engine(requested: str = "") -> str:
    """Select torch's INT8 kernel library for this process and return its name.

    Args:
        requested: an engine name; ``""`` means fbgemm (oneDNN is only faster for base-size models
            on AMX CPUs, and caches a kernel per input shape).

    oneDNN's default kernel cache grows with every new input shape and a tagger's batches come in
    many shapes, so a small cache is set unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` already is
    (oneDNN reads it when it first runs: choose the engine before the first inference in the
    process). Artifacts store plain INT8 tensors: the choice only affects weight packing at load.

    Raises:
        ModelLoadError: ``requested`` is not an engine this torch build has.
    """
    engines = torch.backends.quantized.supported_engines
    wanted = requested.strip()
    if wanted and wanted not in engines:
        raise ModelLoadError(f"quant engine {wanted!r} is not one of this torch's engines {engines}")
    if not wanted:
        wanted = "fbgemm" if "fbgemm" in engines else ("x86" if "x86" in engines else engines[0])
    if wanted == "onednn":
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE))
    torch.backends.quantized.engine = wanted
    return wanted


def _shiti_version() -> str:
    try:
        return metadata.version("shiti")
    except metadata.PackageNotFoundError:
        return "unknown"


def quantize(
    src_dir: str | Path,
    out_dir: str | Path,
    *,
    max_length: int | None = None,
    keep_float: Sequence[str] = (),
    calibration: Sequence[str] = (),
    smooth_alpha: float = DEFAULT_ALPHA,
    int8_embeddings: bool = True,
    fmt: str = "onnx",
) -> Path:
    """Write an INT8 artifact for the RaNER checkpoint ``src_dir`` into ``out_dir``.

    ``fmt`` ``"onnx"`` (what workers serve, :mod:`~worker.model.onnx_export`) or ``"torch"``
    (``model.pt``). ``src_dir`` may also be a training run (its ``best/``) or, for ONNX, a
    torch INT8 artifact (its smoothing is kept).

    Args:
        max_length: window size (tokens, specials included) recorded as the model's default,
            e.g. the window length it was trained on; capped by its position embeddings.
        keep_float: encoder Linear modules left in FP32 (recorded in the manifest).
        calibration: texts (training text, never test) to smooth the FFNs on before quantizing
            (see :mod:`worker.model.smooth`); none: no smoothing.
        smooth_alpha: SmoothQuant's migration strength, used with ``calibration``.
        int8_embeddings: store the word embeddings as row-wise INT8 (4x smaller file).

    Raises:
        ModelLoadError: ``src_dir`` is not a valid checkpoint.
    """
    src, out = Path(src_dir), Path(out_dir)
    if fmt not in ("onnx", "torch"):
        raise ModelLoadError(f"unknown artifact format {fmt!r} (onnx or torch)")
    if (src / "best" / "configuration.json").exists() and not (src / "configuration.json").exists():
        src = src / "best"  # a training run: its best checkpoint
    if is_artifact(src):
        if fmt != "onnx" or calibration or keep_float:
            raise ModelLoadError(f"{src} is already an INT8 artifact: it can only be exported to ONNX as it is")
        from worker.model.onnx_export import export_onnx

        art = load_artifact(src)
        manifest = json.loads((src / "manifest.json").read_text())
        return export_onnx(art, out, max_length=max_length or manifest.get("max_length"), source=str(src.resolve()),
                           smoothing=manifest.get("smoothing"))
    loaded = load_raner_dir(src)
    unknown = set(keep_float) - {n for n, m in loaded.model.encoder.named_modules() if isinstance(m, nn.Linear)}
    if unknown:
        raise ModelLoadError(f"--keep-float names no Linear module of the encoder: {sorted(unknown)}")
    smoothing = None
    if calibration:
        from worker.model.torch_engine import TorchEngine
        from worker.tagger.tagger import Tagger

        tagger = Tagger(TorchEngine(loaded), max_length=max_length)
        texts = list(calibration)
        smooth_ffn(loaded.model, ffn_input_absmax(loaded.model, lambda: tagger.annotate(texts)), smooth_alpha)
        smoothing = {"alpha": smooth_alpha, "texts": len(texts)}
    if fmt == "onnx":
        if keep_float:
            raise ModelLoadError("--keep-float applies to torch artifacts only")
        from worker.model.onnx_export import export_onnx

        if not int8_embeddings:
            raise ModelLoadError("ONNX artifacts always store int8 word-embedding rows")
        return export_onnx(loaded, out, max_length=max_length, source=str(src.resolve()), smoothing=smoothing)
    quantize_model(loaded.model, keep_float=keep_float, int8_embeddings=int8_embeddings)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.pt.tmp"
    torch.save(loaded.model.state_dict(), tmp)
    tmp.replace(out / "model.pt")
    cfg = loaded.model.config.to_dict()
    (out / "config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    shutil.copyfile(src / "vocab.txt", out / "vocab.txt")
    tok = {"do_lower_case": loaded.lower, "is_split_into_words": loaded.char_mode}
    (out / "tokenizer_config.json").write_text(json.dumps(tok, indent=2))
    (out / "labels.json").write_text(json.dumps(loaded.labels, ensure_ascii=False))
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "shiti-int8-bert-crf",
        "source": str(src.resolve()),
        "weights": "model.pt",
        "sha256": sha256_file(out / "model.pt"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "shiti_version": _shiti_version(),
        "torch_version": torch.__version__,
        "mode": "char" if loaded.char_mode else "word",
        "max_length": min(loaded.max_length, max_length or loaded.max_length),
        "float_modules": sorted(keep_float),
        "smoothing": smoothing,
        "word_embeddings": INT8_ROWS if int8_embeddings else FLOAT_ROWS,
        "pooler": loaded.model.encoder.pooler is not None,
        "num_labels": len(loaded.labels),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` looks like a shiti artifact (has a manifest)."""
    return (Path(path) / "manifest.json").exists()


def load_artifact(path: str | Path, *, verify: bool = False, engine: str = "") -> LoadedModel:
    """Load an INT8 artifact without ever building the FP32 model.

    Args:
        path: the artifact directory.
        verify: check the weights' sha256 against the manifest (reads the file once more).
        engine: INT8 kernel library (see :func:`choose_engine`).

    Raises:
        ModelLoadError: a file is missing, the format is unknown, or tensors mismatch.
    """
    path = Path(path)
    for name in ARTIFACT_FILES:
        if not (path / name).exists():
            raise ModelLoadError(f"{path}: not a shiti artifact, missing {name}")
    manifest = json.loads((path / "manifest.json").read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{path}: artifact format {manifest.get('format_version')} != {FORMAT_VERSION}")
    if verify and sha256_file(path / "model.pt") != manifest["sha256"]:
        raise ModelLoadError(f"{path}/model.pt: sha256 does not match the manifest")
    labels = json.loads((path / "labels.json").read_text(encoding="utf-8"))
    shape = read_bert_config(path)
    front = text_front_end(path)
    choose_engine(engine)
    with torch.device("meta"):
        model = TaggerNet(shape, len(labels), pooler=bool(manifest.get("pooler")))
    _swap_empty_quantized(model.encoder, keep_float=set(manifest.get("float_modules", ())))
    if manifest.get("smoothing"):
        add_scale_slots(model, device="meta")
    rows = manifest.get("word_embeddings", FLOAT_ROWS)
    if rows not in (FLOAT_ROWS, INT8_ROWS):
        raise ModelLoadError(f"{path}/manifest.json: word_embeddings {rows!r} is not {FLOAT_ROWS!r} or {INT8_ROWS!r}")
    if rows == INT8_ROWS:
        add_int8_embedding_slot(model, device="meta")
    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise ModelLoadError(f"{path}/model.pt: cannot load ({exc})") from exc
    # Artifacts written before the pure-torch encoder may carry BertModel's buffers.
    # Deleted in place: the state dict's ``_metadata`` (quantized module versions) must stay.
    for key in [k for k in state if k.endswith(("position_ids", "embeddings.token_type_ids"))]:
        del state[key]
    check_state(model, state, path / "model.pt")
    _check_int8_shapes(model, state, path / "model.pt")
    # Pages of model.pt read while a layer's INT8 weights are packed would stay resident until
    # the end of the load (one more copy of all weights at the peak): drop them layer by layer.
    mapped = file_mappings(path / "model.pt")

    def drop_pages(*_: object) -> None:
        release_pages(mapped)

    hooks = [layer.register_load_state_dict_post_hook(drop_pages) for layer in model.encoder.encoder.layer]
    try:
        model.load_state_dict(state, assign=True)
    finally:
        for hook in hooks:
            hook.remove()
    del state
    _materialize_buffers(model)
    model.eval()
    release_pages(mapped)
    trim()  # packing's temporary buffers
    max_length = int(manifest.get("max_length", 512))
    return LoadedModel(model=model, labels=labels, max_length=max_length, source=path, **front)


def _swap_empty_quantized(module: nn.Module, *, keep_float: set[str], prefix: str = "") -> None:
    """Replace each ``nn.Linear`` under ``module`` (but those in ``keep_float``) by a
    placeholder dynamic INT8 Linear that records the shape; loading the state packs the weights.

    The placeholder packs a 1 x 1 weight: ``nnqd.Linear(in, out)`` would allocate and pack an
    empty weight of the full shape that ``load_state_dict`` throws away at once.
    """
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Linear) and full not in keep_float:
            q = nnqd.Linear(1, 1, bias_=child.bias is not None, dtype=torch.qint8)
            q.in_features, q.out_features = child.in_features, child.out_features
            setattr(module, name, q)
        elif not isinstance(child, nn.Linear):
            _swap_empty_quantized(child, keep_float=keep_float, prefix=f"{full}.")


def _check_int8_shapes(model: nn.Module, state: dict, where: Path) -> None:
    """Raise naming the first INT8 Linear whose saved weight does not have the config's shape
    (``check_state`` compares tensors only; packed INT8 weights are saved as a tuple)."""
    for name, module in model.named_modules():
        if isinstance(module, nnqd.Linear):
            weight = state[name + PACKED][0]
            want = (module.out_features, module.in_features)
            if tuple(weight.shape) != want:
                raise ModelLoadError(
                    f"{where}: INT8 weight {name} has shape {tuple(weight.shape)}, config expects {want}"
                )


def load_model(path: str | Path, *, int8: bool = True, engine: str = "") -> LoadedModel:
    """Load an artifact, or a RaNER directory (quantized after loading unless ``int8=False``);
    ``engine`` is the INT8 kernel library (see :func:`choose_engine`)."""
    if is_artifact(path):
        return load_artifact(path, engine=engine)
    loaded = load_raner_dir(path)
    if int8:
        quantize_model(loaded.model, engine=engine)
    return loaded
