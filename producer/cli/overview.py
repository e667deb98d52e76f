"""The corpus view in the terminal: ``shiti entities JOB --group`` / ``--mentioning NAME`` and
``shiti cooccur JOB`` (docs/corpus-view.md)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click

from producer import fields
from producer import overview
from storage.core.cli_options import with_settings
from storage.core.settings import Settings
from storage.core.views import ViewMeta


def _note(meta: ViewMeta) -> None:
    if not meta["complete"]:
        click.echo(f"(the job is not finished: grouped over {meta['documents']:,} done documents at "
                   f"{meta['grouped_at']})", err=True)


def emit(rows: Sequence[Mapping[str, Any]], flat: Sequence[Mapping[str, Any]], cols: list[str], fmt: str) -> None:
    """Rows as JSON Lines (``rows`` as they are), CSV or a plain table (``flat``: one string per column)."""
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
    elif fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(flat)
    else:
        for r in flat:
            click.echo("  ".join(str(r[c]) for c in cols))


def print_groups(settings: Settings, job_id: str, *, label: str | None, limit: int, fmt: str) -> None:
    """The job's canonical entities, most documents first, up to ``limit``."""
    rows: list[Any] = []
    cursor = None
    meta = None
    while len(rows) < limit:
        page = overview.entity_groups(settings, job_id, label=label, cursor=cursor, limit=min(1000, limit - len(rows)))
        meta = meta or page
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if meta is not None:
        _note(meta)
    flat = [{**g, "forms": "|".join(f["text"] for f in g["forms"])} for g in rows]
    emit(rows, flat, ["rank", "label", "name", "documents", "mentions", "forms"], fmt)


def print_mentioning(settings: Settings, job_id: str, name: str, *, label: str | None, limit: int,
                     fmt: str) -> None:
    """The documents mentioning ``name`` or its spellings and aliases, up to ``limit``."""
    def pages() -> Iterator[Any]:
        cursor = None
        got = 0
        while got < limit:
            page = overview.mentioning(settings, job_id, name, label=label, cursor=cursor,
                                       limit=min(1000, limit - got))
            if got == 0:
                g = page["group"]
                click.echo(f"{g['label']} {g['name']}: {g['documents']:,} documents, {g['mentions']:,} mentions "
                           f"({'|'.join(f['text'] for f in g['forms'])})", err=True)
                _note(page)
            yield from page["items"]
            got += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return
    rows = list(pages())
    flat = [{"doc_id": d["doc_id"], "count": len(d["mentions"]),
             "mentions": " ".join(f"{m['start']}-{m['end']}:{m['text']}" for m in d["mentions"])} for d in rows]
    emit(rows, flat, ["doc_id", "count", "mentions"], fmt)


@click.command()
@click.argument("job_id")
@click.option("--with", "with_name", metavar="NAME", help="Only the pairs of this entity (any spelling or alias).")
@click.option("--type", "label", metavar="LABEL", help="With --with: the entity's type, when it has several.")
@click.option("--by", type=click.Choice(overview.BY), default="documents", show_default=True,
              help="documents: most documents together; jaccard: together / mentioning either.")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table")
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@with_settings
def cooccur(job_id: str, with_name: str | None, label: str | None, by: str, limit: int, fmt: str, as_json: bool,
            settings: Settings) -> None:
    """The strongest pairs of a job's canonical entities mentioned in the same documents."""
    label = fields.filter_value("type", label.upper() if label else None)
    page = overview.cooccurrence(settings, job_id, with_name=fields.filter_value("with", with_name), label=label,
                                 by=by, limit=limit)
    _note(page)
    flat = [{"a": f"{p['a']['label']} {p['a']['name']}", "b": f"{p['b']['label']} {p['b']['name']}",
             "documents": p["documents"], "jaccard": f"{p['jaccard']:.3f}"} for p in page["items"]]
    emit(page["items"], flat, ["documents", "jaccard", "a", "b"], "jsonl" if as_json else fmt)
