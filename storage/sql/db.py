"""Engines: SQLite (WAL, busy timeout, BEGIN IMMEDIATE for writers) or PostgreSQL (psycopg).

The schema comes from the Alembic revisions (``storage/sql/migrate.py``): an empty database is
brought to head at first use; one behind the code raises :class:`SchemaOutOfDate` with the
command that upgrades it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from storage.sql import migrate
from storage.core.domain import JOB_OPEN
from storage.core.errors import DatabaseUnavailable, SchemaOutOfDate
from storage.sql.schema import document, job
from storage.core.settings import Settings, child_pythonpath

_WRITE = "shiti_write"
log = logging.getLogger(__name__)


@contextmanager
def _unavailable_is_transient() -> Iterator[None]:
    # The one place that knows which driver errors mean "the database is away": callers (tasks,
    # API, reconciler) handle storage's TransientError and never import SQLAlchemy's exceptions.
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        detail = str(exc.orig or exc).strip().splitlines()[0][:200] if str(exc.orig or exc).strip() else ""
        raise DatabaseUnavailable(f"the database is unavailable right now ({detail}); retry shortly") from exc


@dataclass(frozen=True)
class Database:
    """An engine plus the two ways to use it: short read or write transactions."""

    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (SQLite: deferred, never blocks writers under WAL).

        Raises:
            DatabaseUnavailable: the database is down, restarting or locked.
        """
        with _unavailable_is_transient(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so writers queue on the busy timeout
        instead of failing with "database is locked" when upgrading a read lock).

        Raises:
            DatabaseUnavailable: the database is down, restarting, or locked past the busy timeout.
        """
        with _unavailable_is_transient(), write_connection(self.engine) as conn:
            yield conn


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A write transaction on a bare engine (SQLite: ``BEGIN IMMEDIATE``; see :meth:`Database.write`)."""
    with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
        yield conn


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """Create an engine for ``url`` with the per-dialect settings shiti relies on."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite so BEGIN is ours (SQLAlchemy recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_CACHE: dict[tuple[str, int], Database] = {}
_LOCK = threading.Lock()


def get_database(settings: Settings) -> Database:
    """The cached database for ``settings`` (one engine per URL and process), schema ensured.

    Keyed by pid too: a forked worker child must not reuse its parent's pooled connections.
    """
    url = settings.sqlalchemy_url
    key = (url, os.getpid())
    with _LOCK:
        db = _CACHE.get(key)
        if db is None:
            db = Database(make_engine(url, busy_timeout_ms=settings.busy_timeout_ms))
            with _unavailable_is_transient():
                ensure_schema(db.engine)
            _CACHE[key] = db
        return db


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database (Alembic upgrade to head); raise when the database
    is behind the code or from a newer release.

    Raises:
        SchemaOutOfDate: with the command to run.
    """
    # Several processes may start at once (test process, worker parent, worker child). On SQLite
    # the check-then-create must hold the write lock from the start: a read transaction that later
    # upgrades gets SQLITE_BUSY at once, without waiting on the busy timeout. On PostgreSQL a lost
    # CREATE race raises; the next attempt finds the tables.
    for attempt in range(3):
        try:
            with write_connection(engine) as conn:
                if migrate.state(conn) == "empty":
                    migrate.upgrade(conn)
            break
        except DBAPIError:
            if attempt == 2:
                raise
    problem = migrate.problem(engine)
    if problem:
        raise SchemaOutOfDate(problem)


def upgrade_schema(settings: Settings) -> tuple[str | None, str]:
    """Upgrade the settings' database to this release's schema in place (``shiti db upgrade``;
    ``shiti demo`` runs it first); returns the revisions ``(before, after)``."""
    engine = make_engine(settings.sqlalchemy_url, busy_timeout_ms=settings.busy_timeout_ms)
    try:
        with write_connection(engine) as conn:
            revisions = migrate.upgrade(conn)
            _adopt_open_legacy_jobs(conn, settings.model_name)
            return revisions
    finally:
        engine.dispose()


def _adopt_open_legacy_jobs(conn: Connection, model: str) -> None:
    # Jobs still open from before per-job models (revision 0003) are finished by the deployment's
    # default model: the one of the process running the upgrade (SHITI_MODEL of `shiti db upgrade`,
    # docker-compose's migrate service). Their queued documents go back to pending: their messages
    # sit in the pre-0003 queue no worker reads any more. Finished jobs keep model NULL: which
    # model tagged them was not recorded.
    open_legacy = (job.c.model.is_(None), job.c.status.in_(sorted(JOB_OPEN)))
    conn.execute(update(document).where(document.c.job_id.in_(select(job.c.id).where(*open_legacy)),
                                        document.c.status == "queued").values(status="pending"))
    conn.execute(update(job).where(*open_legacy).values(model=model))


def schema_problems(settings: Settings) -> list[str]:
    """Start-up check of workers and the API: an empty database gets the schema; one behind the
    code (or from a newer release) is a reason to refuse to start, with the command to run. An
    unreachable database is not: it may come back, and requests and batches retry.

    An empty database's schema is created by a short-lived child process: Alembic and the DDL
    modules of every dialect it imports would otherwise stay in this long-running process (and
    in every worker child forked from it) for the rest of its life."""
    engine = make_engine(settings.sqlalchemy_url, busy_timeout_ms=settings.busy_timeout_ms)
    try:
        with engine.connect() as conn:
            empty = migrate.state(conn) == "empty"
        if empty:
            failed = _create_schema_in_a_child(settings)
            if failed:
                return [failed]
        ensure_schema(engine)
    except SchemaOutOfDate as exc:
        return [str(exc)]
    except DBAPIError as exc:
        log.warning("database not reachable at start-up (%s); will retry", type(exc).__name__)
    finally:
        engine.dispose()
    return []


_CREATE = ("import sys; from storage.sql.db import ensure_schema, make_engine; "
           "e = make_engine(sys.argv[1], busy_timeout_ms=int(sys.argv[2])); ensure_schema(e); e.dispose()")


def _create_schema_in_a_child(settings: Settings) -> str | None:
    """Bring an empty database to head in a child interpreter; why it failed, or None."""
    # Same working directory (a relative SQLite URL means the same file); this code importable.
    done = subprocess.run([sys.executable, "-c", _CREATE, settings.sqlalchemy_url, str(settings.busy_timeout_ms)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": child_pythonpath()}, timeout=300)
    if done.returncode == 0:
        return None
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"creating the database schema failed: {tail[:500]}"


def dispose_all() -> None:
    """Dispose every cached engine of this process (tests, shutdown)."""
    with _LOCK:
        for (_, pid), db in list(_CACHE.items()):
            if pid == os.getpid():
                db.engine.dispose()
        _CACHE.clear()
