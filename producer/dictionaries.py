"""User dictionaries as versioned job inputs: create, list, show, and the one a job names.

The file format and its checks are ``storage.core.lexicon``; how the worker applies one is
``worker.tagger.lexicon``. A dictionary is owned like a job: a key sees and uses its own (admin
keys every one); the CLI and an API without keys own none and see all.
"""

from __future__ import annotations

from pathlib import Path

from storage.broker.presence import live_or_none
from storage.catalog import UnknownModel, resolve
from storage.core.errors import NotFound, PermanentError
from storage.core.lexicon import (
    MAX_BYTES,
    DictionaryRef,
    LexiconError,
    canonical,
    check_name,
    content_hash,
    parse,
    parse_canonical,
    types_of,
)
from storage.core.settings import Settings
from storage.core.views import DictionaryView, iso_time
from storage.sql import dictionaries
from storage.sql.db import get_database


def model_labels(settings: Settings, model: str | None = None) -> tuple[str, ...] | None:
    """The entity types of ``model`` (default: the deployment's), or None when not known here."""
    try:
        labels = resolve(settings, model).labels
        return labels or None
    except (UnknownModel, PermanentError):
        pass
    wanted = model or settings.model_name
    for p in live_or_none(settings) or []:  # a model only live workers serve (an API host without files)
        if p["model"] == wanted and p["labels"]:
            return tuple(p["labels"])
    return None


def create_dictionary(settings: Settings, name: str, raw: bytes | str | Path, *,
                      owner: str | None = None) -> DictionaryView:
    """Check and store a dictionary file as the next version of ``name`` (the newest version again
    when its entries are the same); nothing is stored when any line is bad. Types are checked against the deployment's default model when it is known here.

    Raises:
        LexiconError: the first bad line (number and reason), a file over the size limit.
        PermanentError: a bad name, or ``name`` owned by another key.
    """
    check_name(name)
    if isinstance(raw, Path):
        size = raw.stat().st_size
        if size > MAX_BYTES:
            raise LexiconError(0, f"the file has {size:,} bytes; the limit is {MAX_BYTES:,}")
        raw = raw.read_bytes()
    terms = parse(raw, labels=model_labels(settings))
    db = get_database(settings)
    newest = dictionaries.find_dictionary(db, name)
    if newest is not None and newest.owner != owner and owner is not None:
        raise PermanentError(f"dictionary {name!r} belongs to another key")
    content = canonical(terms)
    if newest is not None and newest.content_hash == content_hash(content):
        return view(newest)  # the same entries again: no new version
    ref = dictionaries.create_dictionary(db, name=name, content=content, content_hash=content_hash(content),
                                         entries=len(terms), types=types_of(terms), owner=owner)
    return view(ref)


def find(settings: Settings, name: str, version: int | None = None, *, owner: str | None = None,
         sees_all: bool = True) -> DictionaryRef:
    """A stored dictionary version (default: the newest) the caller may use.

    Raises:
        NotFound: no such name or version, or one owned by another key.
    """
    check_name(name)
    ref = dictionaries.find_dictionary(get_database(settings), name, version)
    if ref is None or (not sees_all and ref.owner != owner):
        what = f"dictionary {name!r}" + (f" version {version}" if version is not None else "")
        raise NotFound(f"{what} not found; `shiti dict list` shows the stored ones")
    return ref


def for_job(settings: Settings, name: str, model_labels_: tuple[str, ...] | None, *, owner: str | None = None,
            sees_all: bool = True) -> DictionaryRef:
    """The dictionary a new job names (``NAME`` or ``NAME@VERSION``), checked against its model's types.

    Raises:
        NotFound: unknown name or version; PermanentError: it names a type the model does not have.
    """
    base, _, version = name.partition("@")
    if version and not version.isdigit():
        raise PermanentError(f"dictionary {name[:120]!r}: the version after '@' must be a number")
    try:
        ref = find(settings, base, int(version) if version else None, owner=owner, sees_all=sees_all)
    except NotFound as exc:
        raise PermanentError(str(exc)) from None
    if model_labels_ is not None:
        missing = [t for t in ref.types if t not in model_labels_]
        if missing:
            raise PermanentError(f"dictionary {ref.label} names {', '.join(missing)}, which the model does not tag "
                                 f"(it tags {', '.join(model_labels_)})")
    return ref


def list_dictionaries(settings: Settings, *, owner: str | None = None, sees_all: bool = True) -> list[DictionaryView]:
    """The newest version of each dictionary the caller may use, by name."""
    return [view(r) for r in dictionaries.list_dictionaries(get_database(settings), owner=owner,
                                                             every_owner=sees_all)]


def show_dictionary(settings: Settings, name: str, version: int | None = None, *, owner: str | None = None,
                    sees_all: bool = True, limit: int = 1000) -> DictionaryView:
    """One version with its versions list and its first ``limit`` entries."""
    ref = find(settings, name, version, owner=owner, sees_all=sees_all)
    db = get_database(settings)
    content = dictionaries.dictionary_content(db, ref.id) or ""
    out = view(ref)
    out["versions"] = [{"version": r.version, "content_hash": r.content_hash, "entries": r.entries,
                        "created_at": iso_time(r.created_at)} for r in dictionaries.dictionary_versions(db, name)]
    out["terms"] = [{"text": t.text, "type": t.label, "action": t.action, "aliases": list(t.aliases)}
                    for t in parse_canonical(content)[:limit]]
    return out


def view(ref: DictionaryRef) -> DictionaryView:
    """What the CLI and API show of one version."""
    return {"name": ref.name, "version": ref.version, "dictionary": ref.label, "content_hash": ref.content_hash,
            "entries": ref.entries, "types": list(ref.types), "created_at": iso_time(ref.created_at) or ""}
