"""``shiti model ...``: fetch, quantize, evaluate and train models.

Registered lazily by ``producer/cli/main.py`` so that other ``shiti`` commands never import torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import click

from storage.core.cli_options import with_settings
from storage.core.errors import ShitiError
from storage.core.settings import DEFAULT_MODEL as _DEFAULT
from storage.core.settings import Settings
from worker.model.smooth import DEFAULT_ALPHA, DEFAULT_CALIBRATION_TEXTS

DEFAULT_MODEL = Path(_DEFAULT)


class ModelGroup(click.Group):
    """Model commands report a bad model or input as one line (``Error: ...``, exit 1), not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ShitiError, ValueError) as exc:  # ModelError is a ShitiError
            raise click.ClickException(str(exc)) from exc


@click.group("model", cls=ModelGroup)
def model() -> None:
    """Fetch, quantize, evaluate and train NER models."""


def _need_torch(what: str) -> None:
    """Stop with an install hint when torch (the ``train`` extra) is absent: serving installs lack it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise click.ClickException(
            f"{what} needs torch: pip install 'shiti[train]' (after `pip install torch==2.13.0`, the CPU "
            "wheel); serving ONNX artifacts does not") from None


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@with_settings
def list_cmd(as_json: bool, settings: Settings) -> None:
    """Models by name: the models directory [SHITI_MODELS_DIR], entries workers cannot serve with the reason,
    and models live workers serve (name, types, size, content hash, live workers, card)."""
    from storage.catalog import list_models, model_views
    from storage.broker.presence import live_or_none

    live = live_or_none(settings) or []
    local = list_models(settings)  # raises for a missing directory, with its name
    if not local and not live:
        raise click.ClickException(f"no models in {settings.models_dir} (set SHITI_MODELS_DIR, or put a model "
                                   "directory there: `shiti model quantize` and `shiti model fetch` write one)")
    views = model_views(settings, live, local=local)
    if as_json:
        click.echo(json.dumps(views, ensure_ascii=False))
        return
    for v in views:
        size = f"{v['size_bytes'] / 2**20:.1f} MiB" if v["size_bytes"] is not None else "?"
        if v["ok"]:
            click.echo(f"{v['name']:<24} {','.join(v['labels']) or '-':<12} {size:>9}  sha256 "
                       f"{v['content_hash'][:16]}  workers {v['workers']}  {v['card']}")
        else:  # broken, or not servable (a torch artifact or RaNER directory): the error says which
            click.echo(f"{v['name']:<24} NOT SERVABLE: {v['error']}")


@model.command("fetch")
@click.argument("model_id", default="damo/nlp_raner_named-entity-recognition_chinese-base-news")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Directory to download into.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the hub.")
def fetch_cmd(model_id: str, out: Path, timeout: float) -> None:
    """Download a RaNER checkpoint from ModelScope."""
    from worker.model.fetch import fetch

    got = fetch(model_id, out, timeout=timeout)
    click.echo(f"downloaded {model_id} to {got}")


@model.command("quantize")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Artifact directory.")
@click.option("--max-length", type=int, default=None,
              help="Default window (tokens incl. [CLS]/[SEP]) recorded in the manifest, e.g. the training window.")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training text (BIO file or one text per line; never the test set): smooth the FFNs "
                   "on it so every Linear runs INT8 (worker/model/smooth.py).")
@click.option("--calibration-texts", type=click.IntRange(min=1), default=DEFAULT_CALIBRATION_TEXTS,
              show_default=True, help="Texts of --calibration used.")
@click.option("--smooth-alpha", type=click.FloatRange(0.0, 1.0), default=DEFAULT_ALPHA, show_default=True,
              help="How much of the activation outliers smoothing moves into the weights.")
def quantize_cmd(src: Path, out: Path, max_length: int | None, calibration: Path | None, calibration_texts: int,
                 smooth_alpha: float) -> None:
    """Write the ONNX INT8 artifact workers serve for SRC: a RaNER checkpoint, a training run, or a
    torch INT8 artifact."""
    _need_torch("shiti model quantize")
    from worker.model.artifact import quantize
    from worker.model.smooth import calibration_texts as read_texts

    texts = read_texts(calibration, calibration_texts) if calibration else []
    got = quantize(src, out, max_length=max_length, calibration=texts, smooth_alpha=smooth_alpha)
    manifest = json.loads((got / "manifest.json").read_text())
    weights = got / "model.onnx"
    click.echo(f"wrote {got} ({weights.stat().st_size / 2**20:.1f} MiB {weights.name}, mode {manifest['mode']}, "
               f"sha256 {manifest['files']['model.onnx'][:12]})")


@model.command("dequantize")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="RaNER directory to write.")
def dequantize_cmd(src: Path, out: Path) -> None:
    """Write the torch INT8 artifact SRC back as an FP32 RaNER directory (e.g. to train it further)."""
    _need_torch("shiti model dequantize")
    from worker.model.raner_dir import dequantize_artifact

    got = dequantize_artifact(src, out)
    click.echo(f"wrote {got}")


@model.command("evaluate")
@click.option("--data", "data_files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="BIO file (repeatable): scores per file and their macro average.")
@click.option("--job", "jobs", metavar="JOB", multiple=True,
              help="Score on a job's corrections (`shiti data import --job`; the job's newest set, or a "
                   "corrections job itself), read from the database of --database-url / SHITI_DATABASE_URL.")
@click.option("--database-url", help="SQLAlchemy URL of the database holding --job [SHITI_DATABASE_URL].")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory [SHITI_DATA_DIR].")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=DEFAULT_MODEL,
              show_default=True, help="ONNX artifact, torch artifact or RaNER directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N sentences of each file.")
@click.option("--fp32", is_flag=True, help="Do not quantize a RaNER directory at load.")
@click.option("--max-length", type=int, default=None, help="Window size in tokens (default: the model's).")
def evaluate_cmd(data_files: tuple[Path, ...], jobs: tuple[str, ...], database_url: str | None,
                 data_dir: Path | None, model_dir: Path, as_json: bool, threads: int, limit: int | None,
                 fp32: bool, max_length: int | None) -> None:
    """Precision/recall/F1 (micro and per type) and speed of a model on BIO files or on a job's
    corrected documents."""
    if not data_files and not jobs:
        raise click.UsageError("give --data FILE or --job JOB (or both)")
    if not model_dir.exists():
        raise click.ClickException(f"model {model_dir} does not exist (train or fetch one, or pass --model)")
    from worker.tagger.loading import load_tagger
    from worker.tagger.onnx_model import is_onnx_artifact

    if is_onnx_artifact(model_dir):
        tagger = load_tagger(model_dir, max_length=max_length, threads=threads)
    else:
        _need_torch(f"evaluating {model_dir} (not an ONNX artifact)")
        from worker.model.torch_tagger import load_torch_tagger

        tagger = load_torch_tagger(model_dir, int8=not fp32, max_length=max_length, threads=threads)
    from worker.model.evaluate import evaluate_files

    sources: dict[str, Any] = {}
    if jobs:
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
        sources.update(_corrections(settings, jobs, limit))
    result = evaluate_files(tagger, [*data_files, *sources.values()], limit=limit)
    if as_json:
        # One file: its scores at the top level (as before); several: per file plus the macro average.
        click.echo(json.dumps(next(iter(result["files"].values())) if len(result["files"]) == 1 else result,
                              indent=2))
        return
    for name, res in result["files"].items():
        click.echo(f"{name}: {res['sentences']} sentences, {res['chars']} chars, "
                   f"{res['seconds']} s ({res['chars_per_second']:.0f} chars/s)")
        click.echo(f"  P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}")
        cal = res["calibration"]
        if cal.get("ece") is not None:
            click.echo(f"  scores: ECE {cal['ece']:.4f}; >=0.5 precision {cal['at_0.5']['precision']} coverage "
                       f"{cal['at_0.5']['coverage']}; >=0.9 precision {cal['at_0.9']['precision']} coverage "
                       f"{cal['at_0.9']['coverage']}")
        for typ, row in res["per_type"].items():
            click.echo(f"    {typ:4} P {row['precision']:.4f}  R {row['recall']:.4f}  F1 {row['f1']:.4f}  "
                       f"n={row['support']}")
    if len(data_files) > 1:
        click.echo(f"macro F1 {result['macro_f1']:.4f}")


def _corrections(settings: Any, jobs: Sequence[str], limit: int | None) -> dict[str, Any]:
    """Each job's corrections (its newest set, or the corrections job named) as a source
    :func:`~worker.model.evaluate.evaluate_files` reads, keyed ``job:ID``."""
    from storage.sql import gold
    from storage.sql.db import get_database
    from worker.model.evaluate import GoldTexts

    db = get_database(settings)
    out: dict[str, Any] = {}
    for job_id in jobs:
        corrections = gold.resolve_gold(db, job_id)
        docs = list(islice(gold.iter_gold(db, corrections), limit))
        out[f"job:{corrections}"] = GoldTexts(f"job:{corrections}", [d.text for d in docs],
                                               [set(d.spans) for d in docs])
    return out


@model.command("calibrate")
@click.argument("artifact", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "data_files", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="Dev BIO file (repeatable; each weighs the same): the predicted entities the "
                                  "score map is fitted on.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--dry-run", is_flag=True, help="Fit and report; leave the artifact as it is.")
def calibrate_cmd(artifact: Path, data_files: tuple[Path, ...], as_json: bool, dry_run: bool) -> None:
    """Fit the map from ARTIFACT's span marginals to calibrated entity scores on dev files and write
    it to its crf.json (the artifact's content hash changes: jobs record the calibrated model)."""
    from worker.model.calibrate import calibration, collect, fit_platt, raw_scores, scores_at, write_calibration
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(artifact)
    windows = collect(tagger, data_files)
    scores, right, files = raw_scores(tagger, windows)
    if not scores:
        raise click.ClickException("the model predicts no entity on these files: nothing to fit on")
    platt = fit_platt(scores, right, files)
    result = {"a": platt[0], "b": platt[1], "files": [str(p) for p in data_files],
              "before": calibration(scores, right), "after": calibration(*scores_at(tagger, windows, platt))}
    if not dry_run:
        write_calibration(artifact, platt, fitted_on=[f"{p.parent.name}/{p.name}" for p in data_files])
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for when in ("before", "after"):
        r = result[when]
        click.echo(f"{when:6} ECE {r['ece']:.4f}  >=0.9: precision {r['at_0.9']['precision']}  "
                   f"coverage {r['at_0.9']['coverage']}  ({r['entities']} entities)")
    click.echo(f"score = sigmoid({platt[0]:.4f} * logit(span marginal) + {platt[1]:.4f})"
               + (" (not written: --dry-run)" if dry_run else f", written to {artifact}/crf.json"))


@model.command("pack")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", show_default=True)
@click.option("--optimizer/--no-optimizer", default=False, show_default=True,
              help="Keep the optimizer's moments (a float32 pack with them resumes bit for bit).")
@click.option("--max-files", type=int, default=8, show_default=True)
@click.option("--max-file-mib", type=int, default=16, show_default=True)
def pack_cmd(run: Path, out: Path, dtype: str, optimizer: bool, max_files: int, max_file_mib: int) -> None:
    """Pack a training run's state (RUN/state.pt) into at most --max-files files of --max-file-mib."""
    _need_torch("shiti model pack")
    from worker.model.runpack import MIB, pack

    try:
        files = pack(run, out, dtype=dtype, optimizer=optimizer, max_files=max_files,
                     max_file_bytes=max_file_mib * MIB)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for f in files:
        click.echo(f"{f}  {f.stat().st_size / MIB:.1f} MiB")


@model.command("unpack")
@click.argument("packed", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The run directory to continue with `shiti model train --out OUT --resume`.")
def unpack_cmd(packed: Path, out: Path) -> None:
    """Rebuild a run's state.pt from `shiti model pack` files."""
    _need_torch("shiti model unpack")
    from worker.model.runpack import unpack

    click.echo(f"wrote {unpack(packed, out)}; continue with: shiti model train ... --out {out} --resume")


@model.command("train")
@click.option("--init", required=True, type=click.Path(exists=True),
              help="What to start from: a BERT directory, a RaNER directory (e.g. an earlier run's best/, head "
                   "included) or a shiti ONNX artifact (e.g. models/shiti-zh-small), whose INT8 weights are "
                   "recovered to FP32 once into OUT/init-from-artifact.")
@click.option("--train", "train_files", multiple=True, required=True, metavar="FILE[:WEIGHT]",
              help="BIO training file (repeatable), optionally with a sampling weight: FILE:2 is seen twice per "
                   "epoch, FILE:0.3 a random 30 %% of it.")
@click.option("--dev", "dev_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="BIO dev file (repeatable); the best checkpoint has the best macro-average F1 over them. "
                   "None: 2,000 train sentences are carved off.")
@click.option("--out", required=True, type=click.Path())
@click.option("--layers", type=int, default=None, help="Keep only the first K encoder layers.")
@click.option("--epochs", type=float, default=3.0, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Encoder learning rate.")
@click.option("--head-lr", type=float, default=2e-3, show_default=True, help="Linear + CRF learning rate.")
@click.option("--warmup", type=int, default=300, show_default=True, help="Linear warm-up steps.")
@click.option("--ckpt-every", type=int, default=200, show_default=True, help="Save OUT/state.pt every N steps.")
@click.option("--batch-tokens", type=int, default=2048, show_default=True)
@click.option("--eval-every", type=int, default=500, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Stop after N steps in this call.")
@click.option("--max-seconds", type=float, default=None, help="Stop (state saved) after this long in this call.")
@click.option("--resume", is_flag=True, help="Continue from OUT/state.pt.")
@click.option("--bf16/--no-bf16", default=None, help="bfloat16 autocast (default: where the device supports it).")
@click.option("--device", default="cpu", show_default=True, help="cpu, or cuda on a GPU machine.")
@click.option("--max-words", type=int, default=126, show_default=True, help="Longest training piece, in words.")
@click.option("--teacher", type=click.Path(exists=True, file_okay=False), default=None,
              help="Distil: a trained RaNER dir (e.g. an earlier run's best/) whose emissions the student matches.")
@click.option("--distill-weight", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Weight of the emission-matching loss next to the CRF loss, with --teacher.")
@click.option("--distill-loss", type=click.Choice(["mse", "kl"]), default="mse", show_default=True,
              help="Emission matching: squared score difference, or KL of per-character label distributions.")
def train_cmd(init: str, train_files: tuple[str, ...], dev_files: tuple[str, ...], out: str, layers: int | None,
              epochs: float, lr: float, head_lr: float, warmup: int, ckpt_every: int, batch_tokens: int,
              eval_every: int, threads: int, seed: int, max_steps: int | None, max_seconds: float | None,
              resume: bool,
              teacher: str | None, distill_weight: float, distill_loss: str, bf16: bool | None, device: str,
              max_words: int) -> None:
    """Fine-tune a BERT-CRF on BIO files; the best dev checkpoint lands in OUT/best.

    With --teacher it is distillation: initialise the student from the teacher with fewer
    --layers (``--init TEACHER --layers 3``) and it learns the gold tags and the teacher's emissions.
    """
    _need_torch("shiti model train")
    from worker.model.train import TrainConfig, parse_weighted, train

    try:
        specs = [parse_weighted(spec) for spec in train_files]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--train") from exc
    for path, _ in specs:
        if not Path(path).is_file():
            raise click.BadParameter(f"{path} is not a file", param_hint="--train")
    cfg = TrainConfig(init=init, train=[p for p, _ in specs], weights=[w for _, w in specs], out=out,
                      dev=list(dev_files) or None, layers=layers, epochs=epochs, lr=lr,
                      head_lr=head_lr, warmup=warmup, ckpt_every=ckpt_every, batch_tokens=batch_tokens,
                      eval_every=eval_every, threads=threads, seed=seed, teacher=teacher,
                      distill_weight=distill_weight, distill_loss=distill_loss, bf16=bf16, device=device,
                      max_words=max_words)
    summary = train(cfg, resume=resume, max_steps=max_steps, max_seconds=max_seconds)
    click.echo(json.dumps(summary))
