"""Schema versions with Alembic: upgrade a database in place, and tell when one is behind the code.

``storage/sql/migrations/versions`` holds one revision per schema change (the first is the baseline
of the tables the releases before migrations made with ``create_all``). A database is one of:

- ``empty``: no shiti table: any component creates the schema by upgrading to head (nothing to
  migrate, so nothing can go wrong);
- ``legacy``: shiti tables but no ``alembic_version`` (made by a release before migrations): it is
  stamped with the baseline by ``shiti db upgrade``, then upgraded;
- ``behind``: an older revision: workers and the API refuse to start until ``shiti db upgrade``;
- ``current``; or ``unknown``: a revision this code does not know (a newer release wrote it):
  refused as well.

To change the schema: edit ``storage/sql/schema.py`` and add ``versions/NNNN_<what>.py`` (copy the
newest, set ``down_revision`` to its ``revision``; ``render_as_batch`` lets ALTERs run on SQLite),
and set ``schema.SCHEMA_REVISION`` to the new revision.
``tests/component/test_migrations.py`` checks that upgrading gives exactly the models' schema, on
SQLite and PostgreSQL, and that a database of the release before keeps every row.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from storage.sql.schema import SCHEMA_REVISION, metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

BASELINE = "0001"
UPGRADE_HINT = "run `shiti db upgrade` (with the same SHITI_DATABASE_URL / --data-dir)"
State = Literal["empty", "legacy", "behind", "current", "unknown"]


DESCRIPTION: dict[str, str] = {
    "empty": "no tables yet; created at first use",
    "legacy": "made before migrations; run `shiti db upgrade`",
    "behind": "behind this release; run `shiti db upgrade`",
    "current": "current",
    "unknown": "from a newer release",
}


# Alembic (and the DDL modules of every dialect it brings, Mako too) is imported only to upgrade
# or to explain a database that is not current: a worker child inherits whatever its parent
# imported, and the start-up check of a current database needs only the version row.


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    # Parsed once per process: the revision files do not change while the process runs.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this code expects: ``schema.SCHEMA_REVISION``, which
    tests/component/test_migrations.py holds equal to the newest revision file's."""
    return SCHEMA_REVISION


def script_head() -> str:
    """The newest revision among the revision files (Alembic's view of ``head``)."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def current(conn: Connection) -> str | None:
    """The database's revision (None: not under migrations)."""
    # Alembic's own table, read as MigrationContext.get_current_revision reads it (one row, no
    # branches here), without importing Alembic.
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise RuntimeError(f"alembic_version holds {len(rows)} revisions; shiti's history has no branches")
    return rows[0] if rows else None


def state(conn: Connection) -> State:
    """Where the database stands against the code (see the module docstring)."""
    revision = current(conn)
    if revision is None:
        tables = set(inspect(conn).get_table_names())
        return "legacy" if tables & set(metadata.tables) else "empty"
    if revision == head():
        return "current"
    known = {s.revision for s in _scripts().walk_revisions()}
    return "behind" if revision in known else "unknown"


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Bring the database to head in the caller's transaction; returns ``(before, after)``.

    A legacy database (tables, no version) is stamped with the baseline first: its tables are
    the baseline's.
    """
    from alembic import command

    before = current(conn)
    cfg = _config(conn)
    if before is None and state(conn) == "legacy":
        command.stamp(cfg, BASELINE)
        log.info("database made before migrations: stamped %s", BASELINE)
    command.upgrade(cfg, "head")
    return before, head()


def problem(engine: Engine) -> str | None:
    """Why a worker or the API must not start on this database (None when it may)."""
    with engine.connect() as conn:
        where = state(conn)
        revision = current(conn)
    if where in ("current", "empty"):
        return None
    if where == "unknown":
        return (f"database schema is at revision {revision}, which this code does not know (a newer "
                f"release wrote it; this code needs {head()}): run a matching release")
    at = "made before migrations" if where == "legacy" else f"at revision {revision}"
    return f"database schema is {at}, this code needs {head()}: {UPGRADE_HINT}"
