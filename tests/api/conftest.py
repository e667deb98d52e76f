"""API tests: FastAPI's TestClient over a real database (SQLite file, and PostgreSQL when available).

No broker is configured (documents stay pending, as with Redis down); ``work`` plays the worker
by running the real task body (``worker.batch.run_batch``) with the fake tagger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from producer.api.app import create_app
from storage.sql import repo
from storage.sql.db import dispose_all, get_database
from storage.core.domain import DocumentStatus
from storage.sql.schema import document
from storage.core.settings import Settings
from tests.helpers.fake_tagger import make_tagger


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(**({"data_dir": tmp_path / "data", "redis_url": ""} | changes))  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh database of each dialect, no broker."""
    url = ""
    if request.param == "postgresql":
        from tests.conftest import _fresh_pg_database

        url = _fresh_pg_database(request.getfixturevalue("postgres_url"))
    yield make_settings(tmp_path, database_url=url)
    dispose_all()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def work(settings: Settings, job_id: str) -> None:
    """Tag every pending document of ``job_id`` through the worker's own batch function."""
    from worker.batch import run_batch

    db = get_database(settings)
    tagger = make_tagger()
    waiting = select(document.c.id).where(
        document.c.job_id == job_id, document.c.status.in_([DocumentStatus.PENDING, DocumentStatus.QUEUED]))
    with db.read() as conn:
        ids = list(conn.execute(waiting.order_by(document.c.id)).scalars())
    for start in range(0, len(ids), 64):
        run_batch(settings, job_id=job_id, doc_ids=ids[start:start + 64], tagger=tagger, db=db, topup=False)


def submit(client: TestClient, docs: list[dict[str, str]], **params: str) -> str:
    response = client.post("/jobs", json=docs, params=params)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    """The response is the JSON error envelope with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def background_worker(settings: Settings) -> Iterator[None]:
    """A thread that tags whatever job is open, like a worker would."""
    stop = threading.Event()

    def loop() -> None:
        db = get_database(settings)
        while not stop.is_set():
            for job_id in repo.open_jobs(db):
                work(settings, job_id)
            stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
