"""Alembic migrations (storage/sql/migrate.py): a fresh database gets exactly the models' schema; a
database made by the release before migrations, with jobs and entities in it, upgrades in place
with every row intact; a database behind the code, or from a newer release, is refused with the
command to run -- by the library, the CLI, a worker and the API (exit 78). SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, insert, select, text

from producer.cli.main import cli
from storage.sql import migrate
from storage.sql.db import dispose_all, get_database, make_engine, upgrade_schema
from storage.core.errors import SchemaOutOfDate
from storage.processes.launch import worker_command
from storage.broker.redis_server import RedisServer
from storage.sql.schema import metadata
from storage.core.settings import Settings
from tests.helpers import legacy_schema as legacy

REPO = Path(__file__).resolve().parents[2]


def _schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for name, table in legacy.metadata.tables.items()}


def _legacy_database(settings: Settings) -> Engine:
    """A database as the release before migrations left it: its tables, two jobs, documents, entities."""
    engine = make_engine(settings.sqlalchemy_url)
    legacy.metadata.create_all(engine)
    with engine.begin() as conn:
        for j in ("a" * 32, "b" * 32):
            conn.execute(insert(legacy.job).values(id=j, name=f"job {j[0]}", status="succeeded", sealed=True,
                                                   total=2, done=2, failed=0, cancelled=0, chars_total=12,
                                                   chars_done=12, submitted_at=1.0, started_at=2.0, finished_at=3.0))
            for k in range(2):
                doc = conn.execute(insert(legacy.document).values(
                    job_id=j, ext_id=f"d{k}", line=k + 1, text="张伟在北京工作。", n_chars=8, status="done",
                    attempts=1, updated_at=3.0)).inserted_primary_key[0]
                conn.execute(insert(legacy.entity).values(job_id=j, document_id=doc, start=0, end=2, label="PER",
                                                          text="张伟", score=0.9))
                conn.execute(insert(legacy.entity).values(job_id=j, document_id=doc, start=3, end=5, label="LOC",
                                                          text="北京", score=0.8))
    return engine


def test_the_code_expects_the_newest_revision_file_and_checks_a_current_database_without_alembic(
        settings: Settings) -> None:
    assert migrate.head() == migrate.script_head()
    get_database(settings)  # created at head, by Alembic, in this process
    # A worker child inherits its parent's imports: the start-up check of a current database
    # (the worker's and the API's) must not bring Alembic and its dialect modules in.
    probe = ("import sys; import worker.tasks; "
             "from storage.sql import db, migrate; e = db.make_engine(sys.argv[1]); db.ensure_schema(e); "
             "print(migrate.problem(e), sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))")
    out = subprocess.run([sys.executable, "-c", probe, settings.sqlalchemy_url], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "None []"


def test_a_fresh_database_is_created_at_head_with_exactly_the_models_schema(settings: Settings) -> None:
    db = get_database(settings)
    with db.read() as conn:
        assert (migrate.current(conn), migrate.state(conn)) == (migrate.head(), "current")
    assert _schema_diff(db.engine) == []


def test_the_release_before_migrations_upgrades_in_place_with_every_row(settings: Settings) -> None:
    # Given a database made by the last release before migrations, with jobs and entities
    engine = _legacy_database(settings)
    before = _rows(engine)
    # When the code opens it, Then it is refused with the command that upgrades it
    with pytest.raises(SchemaOutOfDate, match="made before migrations.*shiti db upgrade"):
        get_database(settings)
    dispose_all()
    runner = CliRunner()
    env = {f"SHITI_{k}": v for k, v in (("DATA_DIR", str(settings.data_dir)),
                                         ("DATABASE_URL", settings.database_url))}
    refused = runner.invoke(cli, ["jobs"], env=env)
    assert refused.exit_code == 1 and "shiti db upgrade" in refused.output
    assert "made before migrations" in runner.invoke(cli, ["db", "current"], env=env).output
    # When `shiti db upgrade` runs
    done = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert done.exit_code == 0, done.output
    assert f"none -> {migrate.head()}" in done.output
    # Then every row is intact, the schema is exactly the models', and the code opens it
    assert _rows(engine) == before
    assert _schema_diff(engine) == []
    assert runner.invoke(cli, ["db", "current"], env=env).output.startswith(f"revision {migrate.head()} (current")
    assert runner.invoke(cli, ["jobs"], env=env).exit_code == 0
    get_database(settings)
    # And upgrading again changes nothing
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert _rows(engine) == before
    engine.dispose()


def test_open_jobs_from_before_per_job_models_are_given_the_default_model_at_upgrade(settings: Settings) -> None:
    # Given a pre-migrations database with a finished job and an open one whose documents are queued
    engine = _legacy_database(settings)
    with engine.begin() as conn:
        conn.execute(insert(legacy.job).values(id="c" * 32, name="open", status="running", sealed=True, total=2,
                                               done=0, failed=0, cancelled=0, chars_total=16, chars_done=0,
                                               submitted_at=1.0, started_at=2.0))
        for k in range(2):
            conn.execute(insert(legacy.document).values(job_id="c" * 32, ext_id=f"d{k}", line=k + 1, text="张伟在北京。",
                                                         n_chars=8, status="queued", attempts=0, updated_at=3.0))
    # When it is upgraded by a process whose default model is settings.model
    upgrade_schema(settings)
    # Then the open job is the default model's and its documents go back to pending (their messages
    # sit in the old queue no worker reads); the finished ones keep "unknown" (NULL)
    with engine.connect() as conn:
        models = dict(conn.execute(select(metadata.tables["job"].c.id, metadata.tables["job"].c.model)).all())
        statuses = set(conn.execute(select(legacy.document.c.status).where(legacy.document.c.job_id == "c" * 32)).scalars())
    assert models == {"a" * 32: None, "b" * 32: None, "c" * 32: settings.model_name}
    assert statuses == {"pending"}
    engine.dispose()


def test_a_revision_from_a_newer_release_is_refused(settings: Settings) -> None:
    db = get_database(settings)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    dispose_all()
    with pytest.raises(SchemaOutOfDate, match="f00dcafe, which this code does not know"):
        get_database(settings)


@pytest.mark.integration
def test_a_worker_and_the_api_refuse_a_database_behind_the_code(tmp_path: Path, redis_server: RedisServer) -> None:
    # Given a database from the release before migrations
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url,
                        model="py:tests.helpers.fake_tagger:make_tagger")
    _legacy_database(settings).dispose()
    # When a worker starts, Then it exits 78 naming the command to run
    argv, env = worker_command(settings)
    worker = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                            start_new_session=True)
    assert worker.returncode == 78, worker.stderr[-2000:]
    assert "refusing to start: database schema is made before migrations" in worker.stderr
    assert "shiti db upgrade" in worker.stderr
    # And so does the API
    api = subprocess.run([sys.executable, "-m", "producer.cli.main", "serve", "--port", "0"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert api.returncode == 78, api.stderr[-2000:]
    assert "shiti serve: refusing to start: database schema is made before migrations" in api.stderr
