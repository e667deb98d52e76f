"""``shiti dict``: user dictionaries as versioned job inputs (``producer.dictionaries``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from storage.core.cli_options import with_settings
from storage.core.settings import Settings


@click.group("dict")
def dict_group() -> None:
    """User dictionaries: TSV lines `text<TAB>TYPE[<TAB>force|block[<TAB>aliases]]` (README, "Dictionaries")."""


@dict_group.command("create")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@with_settings
def create(name: str, path: Path, as_json: bool, settings: Settings) -> None:
    """Store PATH as the next version of dictionary NAME (nothing is stored if any line is bad)."""
    from producer.dictionaries import create_dictionary
    from storage.core.errors import ShitiError

    if not path.is_file():
        raise ShitiError(f"no such file: {path}")
    made = create_dictionary(settings, name, path)
    if as_json:
        click.echo(json.dumps(made, ensure_ascii=False))
    else:
        click.echo(f"stored dictionary {made['dictionary']}: {made['entries']} entries "
                   f"({', '.join(made['types']) or 'block only'}), sha256 {made['content_hash'][:16]}")


@dict_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def list_(as_json: bool, settings: Settings) -> None:
    """The newest version of every dictionary."""
    from producer.dictionaries import list_dictionaries

    items = list_dictionaries(settings)
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    for d in items:
        click.echo(f"{d['dictionary']:<30} {d['entries']:>8} entries  {','.join(d['types']) or '-':<14} "
                   f"sha256 {d['content_hash'][:16]}  {d['created_at']}")


@dict_group.command("show")
@click.argument("name")
@click.option("--version", type=click.IntRange(1), help="Default: the newest.")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True, help="Entries printed.")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def show(name: str, version: int | None, limit: int, as_json: bool, settings: Settings) -> None:
    """One dictionary version: its hash, its versions and its first entries."""
    from producer.dictionaries import show_dictionary

    d = show_dictionary(settings, name, version, limit=limit)
    if as_json:
        click.echo(json.dumps(d, ensure_ascii=False))
        return
    click.echo(f"{d['dictionary']}  {d['entries']} entries  types {','.join(d['types']) or '-'}  "
               f"sha256 {d['content_hash']}")
    for v in d.get("versions", []):
        click.echo(f"  version {v['version']:<4} {v['entries']:>8} entries  sha256 {v['content_hash'][:16]}  "
                   f"{v['created_at']}")
    for t in d.get("terms", []):
        aliases = f"\t{'|'.join(t['aliases'])}" if t["aliases"] else ""
        click.echo(f"{t['text']}\t{t['type']}\t{t['action']}{aliases}")
