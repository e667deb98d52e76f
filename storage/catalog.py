"""Models by name: the models directory, content hashes, and which name a job or worker means.

A model is a directory in ``settings.models_dir`` (its name is the directory's). Workers serve
one format, the ONNX artifact (``manifest.json`` of kind :data:`SERVED_KIND`); a torch artifact
or a ModelScope RaNER directory is listed as not servable, with the command that makes it
servable (``shiti model quantize``). Its **content hash** is what provenance records: for a
directory with a ``manifest.json`` listing its files' sha256, the sha256 of that listing, after
checking every listed file against it; for any other directory, the sha256 over every file's
relative path and content. Nothing here loads
a model (no onnxruntime, no torch): the producer validates names with it.

``settings.model`` (the default of jobs and workers) may also be a directory's path (the model's
name is the directory's) or ``py:module:factory`` (a tagger factory; its name is the spec, its
hash the spec's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.core.errors import PermanentError
from storage.core.settings import MODEL_NAME, PY_PREFIX, Settings
from storage.core.views import ModelView, Presence

_CARDS = ("MODEL_CARD.md", "README.md")
SERVED_KIND = "shiti-onnx-int8-bert-crf"  # manifest.json "kind" of what workers serve
_HASHES: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}  # per process, keyed by file stats


class UnknownModel(PermanentError):
    """A job names a model no models directory nor live worker knows."""


@dataclass(frozen=True)
class ModelInfo:
    """One model: ``error`` is set (and ``content_hash`` empty) when the entry cannot be served."""

    name: str
    path: str
    content_hash: str = ""
    labels: tuple[str, ...] = ()
    size_bytes: int = 0
    card: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def as_dict(self) -> dict[str, object]:
        """JSON form (``shiti model list --json``, ``GET /models``)."""
        return {"name": self.name, "path": self.path, "content_hash": self.content_hash,
                "labels": list(self.labels), "size_bytes": self.size_bytes, "card": self.card,
                "ok": self.ok, "error": self.error or None}


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def content_hash(path: Path) -> str:
    """The model directory's content hash (see the module docstring); cached per file stats.

    Raises:
        PermanentError: a file its manifest lists is missing or differs from its recorded sha256.
    """
    files = _files(path)
    key = (str(path.resolve()), tuple((str(p), int(p.stat().st_size), int(p.stat().st_mtime_ns)) for p in files))
    if key in _HASHES:
        return _HASHES[key]
    manifest = path / "manifest.json"
    listed = _manifest_files(manifest) if manifest.is_file() else None
    if listed:
        for name, expected in sorted(listed.items()):
            if not (path / name).is_file():
                raise PermanentError(f"{name} is listed in manifest.json but missing")
            if sha256_file(path / name) != expected:
                raise PermanentError(f"{name} does not match its sha256 in manifest.json (changed or corrupt)")
        digest = hashlib.sha256(json.dumps(dict(sorted(listed.items())), separators=(",", ":")).encode())
    else:
        digest = hashlib.sha256()
        for p in files:
            digest.update(str(p.relative_to(path)).encode("utf-8") + b"\0" + sha256_file(p).encode() + b"\n")
    _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _manifest_files(manifest: Path) -> dict[str, str] | None:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PermanentError(f"manifest.json is not readable JSON ({exc})") from exc
    files = data.get("files") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else None


def _labels(path: Path) -> tuple[str, ...]:
    labels = path / "labels.json"
    if labels.is_file():
        data = json.loads(labels.read_text(encoding="utf-8"))
        if isinstance(data, list):
            return _entity_types(str(x) for x in data)
    for name in ("config.json", "configuration.json"):
        config = path / name
        if config.is_file():
            data = json.loads(config.read_text(encoding="utf-8"))
            id2label = data.get("id2label") if isinstance(data, dict) else None
            if isinstance(id2label, dict):
                return _entity_types(str(v) for v in id2label.values())
    return ()


def _entity_types(tags: object) -> tuple[str, ...]:
    types = {t.split("-", 1)[1] for t in tags if isinstance(t, str) and "-" in t}  # type: ignore[attr-defined]
    return tuple(sorted(types))


def _card_line(path: Path) -> str:
    for name in _CARDS:
        card = path / name
        if card.is_file():
            for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip().lstrip("#").strip()
                if line:
                    return line[:200]
    return ""


def _looks_like_model(path: Path) -> str:
    """Why ``path`` is not a model directory ("" when it looks like one)."""
    if (path / "manifest.json").is_file():
        return ""
    if (path / "config.json").is_file() and any(
            (path / n).is_file() for n in ("pytorch_model.bin", "model.safetensors", "model.onnx")):
        return ""
    return "neither a shiti artifact (manifest.json) nor a RaNER directory (config.json and weights)"


def _not_servable(path: Path) -> str:
    """Why a model-looking ``path`` cannot be served ("" when it can)."""
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            return ""  # content_hash names what is wrong with the manifest
        if kind == SERVED_KIND:
            return ""
        what = "a torch artifact" if (path / "model.pt").is_file() else f"an artifact of kind {kind!r}"
    else:
        what = "a RaNER directory"
    return (f"{what}, not servable (workers serve ONNX artifacts): quantize it first: "
            f"shiti model quantize {path} --out <dir>")


def describe(name: str, path: Path) -> ModelInfo:
    """Inspect one model directory (never raises: a broken entry carries its reason in ``error``)."""
    if not path.is_dir():
        return ModelInfo(name, str(path), error="not a directory")
    why = _looks_like_model(path) or _not_servable(path)
    if why:
        return ModelInfo(name, str(path), card=_card_line(path), error=why)
    try:
        digest = content_hash(path)
        labels = _labels(path)
    except (PermanentError, OSError, ValueError) as exc:
        return ModelInfo(name, str(path), card=_card_line(path), error=str(exc))
    size = sum(p.stat().st_size for p in _files(path))
    return ModelInfo(name, str(path), digest, labels, size, _card_line(path))


def list_models(settings: Settings) -> list[ModelInfo]:
    """Every entry of the models directory, by name, broken ones included (with their reason).

    Raises:
        PermanentError: the models directory does not exist or is not a directory.
    """
    root = Path(settings.models_dir)
    if not root.is_dir():
        raise PermanentError(f"models directory {root} does not exist (set SHITI_MODELS_DIR)")
    return [describe(p.name, p) for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.is_dir() and not p.name.startswith((".", "_"))]


def resolve(settings: Settings, name: str | None = None) -> ModelInfo:
    """The model a job or worker means: ``name`` (default ``settings.model``) found in the models
    directory, or ``settings.model`` itself when it is a path or ``py:`` spec of that name.

    Raises:
        UnknownModel: no such model; the message lists the known ones.
        PermanentError: the model exists but is broken (the reason).
    """
    spec = settings.model
    wanted = name or settings.model_name
    if wanted == settings.model_name and spec.startswith(PY_PREFIX):
        return ModelInfo(spec, spec, hashlib.sha256(spec.encode()).hexdigest(), card="a tagger factory")
    if wanted == settings.model_name and not MODEL_NAME.match(spec):
        info = describe(wanted, Path(spec))
    elif MODEL_NAME.match(wanted) and (Path(settings.models_dir) / wanted).is_dir():
        info = describe(wanted, Path(settings.models_dir) / wanted)
    else:
        raise UnknownModel(f"unknown model {wanted!r}; known: {', '.join(known_names(settings)) or 'none'}")
    if not info.ok:
        raise PermanentError(f"model {wanted!r} ({info.path}) cannot be served: {info.error}")
    return info


def known_names(settings: Settings) -> list[str]:
    """Names a job may ask for here: the working entries of the models directory and the default
    (when it is a path or ``py:`` spec that works)."""
    try:
        names = {m.name for m in list_models(settings) if m.ok}
    except PermanentError:
        names = set()
    spec = settings.model
    if spec.startswith(PY_PREFIX) or (not MODEL_NAME.match(spec) and describe(settings.model_name, Path(spec)).ok):
        names.add(settings.model_name)
    return sorted(names)


def model_views(settings: Settings, live: Sequence[Presence], *,
                local: list[ModelInfo] | None = None) -> list[ModelView]:
    """Models a job may name: this host's models directory (broken entries with their reason) and
    the default, plus models only live workers announce (an API host without model files); each
    with the number of live workers serving it (same name and content hash). ``local``: the
    models directory as :func:`list_models` already read it."""
    serving: dict[tuple[str, str], int] = {}
    for p in live:
        serving[(p["model"], p["content_hash"])] = serving.get((p["model"], p["content_hash"]), 0) + 1
    if local is None:
        try:
            local = list_models(settings)
        except PermanentError:
            local = []
    local = list(local)
    if settings.model_name not in {m.name for m in local}:
        try:
            local.append(resolve(settings))
        except UnknownModel:
            local.append(ModelInfo(settings.model_name, settings.model,
                                   error=f"the default model (SHITI_MODEL) is not in {settings.models_dir}"))
        except PermanentError as exc:
            local.append(ModelInfo(settings.model_name, settings.model, error=str(exc)))
    views: list[ModelView] = [
        {"name": m.name, "content_hash": m.content_hash, "labels": list(m.labels), "size_bytes": m.size_bytes,
         "card": m.card, "ok": m.ok, "error": m.error or None, "workers": serving.pop((m.name, m.content_hash), 0)}
        for m in local]
    for p in live:
        if (p["model"], p["content_hash"]) in serving:
            views.append({"name": p["model"], "content_hash": p["content_hash"], "labels": p["labels"],
                          "size_bytes": None, "card": "", "ok": True, "error": None,
                          "workers": serving.pop((p["model"], p["content_hash"]))})
    return sorted(views, key=lambda v: (v["name"], v["content_hash"]))
