"""Stored user dictionaries: one row per version, newest wins by name (storage/core/lexicon.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from storage.core.errors import TransientError
from storage.core.lexicon import DictionaryRef
from storage.sql.db import Database
from storage.sql.schema import dictionary


def _dict_ref(row: Any) -> DictionaryRef:
    return DictionaryRef(row.id, row.name, row.version, row.content_hash, row.entries,
                         tuple(t for t in row.types.split(",") if t), row.owner, row.created_at)


_DICT_COLUMNS = (dictionary.c.id, dictionary.c.name, dictionary.c.version, dictionary.c.content_hash,
                 dictionary.c.entries, dictionary.c.types, dictionary.c.owner, dictionary.c.created_at)


def create_dictionary(db: Database, *, name: str, content: str, content_hash: str, entries: int,
                      types: Sequence[str], owner: str | None) -> DictionaryRef:
    """Store a new version of dictionary ``name`` (1 for a new name). Two creates racing for the
    same version: the loser retries with the next one."""
    for _ in range(5):
        try:
            with db.write() as conn:
                last = conn.execute(select(func.max(dictionary.c.version)).where(dictionary.c.name == name)).scalar()
                conn.execute(insert(dictionary).values(
                    name=name, version=int(last or 0) + 1, content_hash=content_hash, content=content,
                    entries=entries, types=",".join(types), owner=owner, created_at=time.time()))
        except IntegrityError:
            continue
        found = find_dictionary(db, name)
        assert found is not None
        return found
    raise TransientError(f"dictionary {name!r}: could not pick a version number")


def find_dictionary(db: Database, name: str, version: int | None = None) -> DictionaryRef | None:
    """Version ``version`` of dictionary ``name`` (default: its newest), or None."""
    stmt = select(*_DICT_COLUMNS).where(dictionary.c.name == name)
    stmt = stmt.where(dictionary.c.version == version) if version is not None else stmt
    with db.read() as conn:
        row = conn.execute(stmt.order_by(dictionary.c.version.desc()).limit(1)).first()
    return _dict_ref(row) if row else None


def dictionary_content(db: Database, dictionary_id: int) -> str | None:
    """The canonical content of one stored version (None: no such row)."""
    with db.read() as conn:
        return conn.execute(select(dictionary.c.content).where(dictionary.c.id == dictionary_id)).scalar()


def list_dictionaries(db: Database, *, owner: str | None = None, every_owner: bool = True) -> list[DictionaryRef]:
    """The newest version of every dictionary (of ``owner`` only unless ``every_owner``), by name."""
    newest = (select(dictionary.c.name, func.max(dictionary.c.version).label("v"))
              .group_by(dictionary.c.name).subquery())
    stmt = (select(*_DICT_COLUMNS)
            .join(newest, (dictionary.c.name == newest.c.name) & (dictionary.c.version == newest.c.v))
            .order_by(dictionary.c.name))
    if not every_owner:
        stmt = stmt.where(dictionary.c.owner.is_(None) if owner is None else dictionary.c.owner == owner)
    with db.read() as conn:
        return [_dict_ref(r) for r in conn.execute(stmt)]


def dictionary_versions(db: Database, name: str) -> list[DictionaryRef]:
    """Every version of dictionary ``name``, oldest first."""
    with db.read() as conn:
        rows = conn.execute(select(*_DICT_COLUMNS).where(dictionary.c.name == name).order_by(dictionary.c.version))
        return [_dict_ref(r) for r in rows]
