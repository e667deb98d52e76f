"""``shiti sample`` and ``shiti data import``: the correction loop's commands (docs/corrections.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from storage.core.cli_options import with_settings
from storage.core.errors import ShitiError
from storage.core.settings import Settings


def write_export(settings: Settings, job_id: str, pieces: Iterable[str], *, fmt: str, out: Path | None,
                 what: str = "documents") -> None:
    """Write an export's pieces to ``out`` (or stdout); a Label Studio export also gets its
    labeling config beside ``out``."""
    fh = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        for piece in pieces:
            fh.write(piece)
    finally:
        if out:
            fh.close()
    if out:
        click.echo(f"wrote {fmt} {what} of job {job_id} to {out}", err=True)
    if fmt == "label-studio":
        from producer.review import label_config

        config = label_config(settings, job_id)
        if out:
            path = out.with_name(out.stem + ".label-config.xml")
            path.write_text(config, encoding="utf-8")
            click.echo(f"its Label Studio labeling config: {path}", err=True)
        else:
            click.echo("the labeling config these tasks go with (Settings > Labeling Interface > Code):\n"
                       + config, err=True)


@click.command()
@click.argument("job_id")
@click.option("--n", "n", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="How many documents.")
@click.option("--by", type=click.Choice(["uncertainty", "disagreement", "random"]), default="uncertainty",
              show_default=True, help="uncertainty: least certain entities first; disagreement: most differences "
                                      "from --against first; random: a seeded sample.")
@click.option("--against", metavar="JOB_B", help="The job to disagree with (a rerun, another model).")
@click.option("--seed", type=int, default=0, show_default=True, help="Breaks ties (and draws --by random).")
@click.option("--include-corrected", is_flag=True, help="Also documents already corrected (`shiti data import --job`).")
@click.option("--format", "fmt", type=click.Choice(["label-studio", "doccano", "conll", "bio", "ids"]),
              default="label-studio", show_default=True, help="ids: one document id per line with its measure.")
@click.option("--offsets", type=click.Choice(["codepoint", "utf16"]), help="As for `shiti export`.")
@click.option("--out", type=click.Path(path_type=Path), help="Output file (default stdout).")
@with_settings
def sample(job_id: str, n: int, by: str, against: str | None, seed: int, include_corrected: bool, fmt: str,
           offsets: str | None, out: Path | None, settings: Settings) -> None:
    """The N documents of a job most worth correcting, in an annotation tool's format."""
    from producer.review import export, sample as pick

    picks = pick(settings, job_id, n=n, by=by, against=against, seed=seed, include_corrected=include_corrected)
    click.echo(f"sampled {len(picks)} documents of job {job_id} by {by}" +
               (f" (fewer than {n}: no more qualify)" if len(picks) < n else ""), err=True)
    if fmt == "ids":
        lines = (f"{p.doc_id}\t{p.measure:.4f}\n" for p in picks)
        write_export(settings, job_id, lines, fmt=fmt, out=out, what="document ids")
        return
    pieces = export(settings, job_id, fmt, offsets=offsets, rows=[p.row_id for p in picks])
    write_export(settings, job_id, pieces, fmt=fmt, out=out, what="sampled documents")


@click.group("data")
def data_group() -> None:
    """Training data from annotators' corrections."""


@data_group.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--from", "tool", type=click.Choice(["label-studio", "doccano", "conll"]),
              help="The tool the export comes from (default: by extension: .json Label Studio, .jsonl doccano, "
                   "else CoNLL).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a BIO training file here (and its lineage beside it, OUT.lineage.json).")
@click.option("--job", "job_id", metavar="JOB", help="Store the corrections as gold of this job's documents.")
@click.option("--model", "model_name", metavar="NAME",
              help="Check labels against this model's types (default: the job's model, else the default).")
@click.option("--offsets", type=click.Choice(["codepoint", "utf16"]), help="Override how the tool counts characters.")
@click.option("--accept-predictions", is_flag=True,
              help="A task nobody annotated counts with its prediction as it stands (default: skipped).")
@click.option("--name", help="Name of the corrections job (default: from the file).")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def import_cmd(path: Path, tool: str | None, out: Path | None, job_id: str | None, model_name: str | None,
               offsets: str | None, accept_predictions: bool, name: str | None, as_json: bool,
               settings: Settings) -> None:
    """Read an annotation tool's export of corrected documents: nothing is written or stored
    unless every task is valid."""
    from producer.corrections import guess_tool, import_corrections

    if not path.is_file():
        raise ShitiError(f"no such file: {path}")
    done = import_corrections(settings, path.read_bytes(), tool=tool or guess_tool(path), source_name=path.name,
                              job_id=job_id, model=model_name, out=out, offsets=offsets,
                              accept_predictions=accept_predictions, name=name)
    view = done.view()
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False))
        return
    click.echo(f"read {view['documents']} corrected documents, {view['entities']} entities ({view['tool']})"
               + (f"; skipped {view['skipped']} tasks nobody annotated" if view["skipped"] else ""))
    if done.out:
        click.echo(f"training file {done.out} (lineage {done.out}.lineage.json)")
    if done.gold_job:
        click.echo(f"stored as corrections job {done.gold_job}: `shiti diff {job_id} {done.gold_job}`, "
                   f"`shiti model evaluate --job {done.gold_job}`")
