"""Retention on SQLite and PostgreSQL: a finished job's rows go in bounded batches and nothing of
other jobs changes; an open job is refused; --older-than picks by finish time; corrections of a
purged job stay."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from producer import fields
from producer.cli.main import cli
from producer.corrections import import_corrections
from producer.review import export
from producer.service import purge
from storage.core.errors import InvalidTransition, NotFound, PermanentError
from storage.core.settings import Settings
from storage.sql import retention
from storage.sql.db import get_database
from storage.sql.schema import document, entity, job
from tests.component.test_corrections import _job


def _counts(settings: Settings, job_id: str) -> tuple[int, int, int]:
    with get_database(settings).read() as conn:
        return tuple(int(conn.execute(select(func.count()).select_from(t).where(t.c.job_id == job_id)).scalar_one())
                     for t in (document, entity)) + (  # type: ignore[return-value]
            int(conn.execute(select(func.count()).where(job.c.id == job_id)).scalar_one()),)


def test_a_purge_deletes_the_job_in_batches_and_nothing_else(settings: Settings) -> None:
    keep, gone = _job(settings), _job(settings)
    before = _counts(settings, keep)
    corrected = import_corrections(settings, "".join(export(settings, gone, "label-studio")).encode(),
                                   tool="label-studio", job_id=gone, accept_predictions=True).gold_job
    assert corrected is not None
    done = retention.purge_job(get_database(settings), gone, batch=1)  # one document per transaction
    assert done == {"job_id": gone, "documents": 4, "entities": 10}
    assert _counts(settings, gone) == (0, 0, 0)
    assert _counts(settings, keep) == before and _counts(settings, corrected)[1] == 10
    with pytest.raises(NotFound):
        purge(settings, job_id=gone)


def test_an_open_job_is_refused_and_ages_pick_by_finish_time(settings: Settings) -> None:
    old, new = _job(settings), _job(settings)
    db = get_database(settings)
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == old).values(finished_at=1000.0))
        conn.execute(update(job).where(job.c.id == new).values(finished_at=1000.0 + 86400 * 40))
        conn.execute(update(job).where(job.c.id == new).values(status="running"))
    with pytest.raises(InvalidTransition, match="only a finished job"):
        purge(settings, job_id=new)
    now = 1000.0 + 86400 * 45
    assert [d["job_id"] for d in purge(settings, older_than="30d", now=now, dry_run=True)] == [old]
    assert _counts(settings, old)[0] == 4  # a dry run deletes nothing
    assert [d["job_id"] for d in purge(settings, older_than="30d", now=now)] == [old]
    assert _counts(settings, old) == (0, 0, 0) and _counts(settings, new)[2] == 1
    with pytest.raises(PermanentError, match="not both"):
        purge(settings, job_id=new, older_than="1d")


@pytest.mark.parametrize("age, seconds", [("30d", 2592000), ("12h", 43200), ("90m", 5400), ("3600s", 3600)])
def test_ages(age: str, seconds: int) -> None:
    assert fields.age_seconds(age) == seconds


@pytest.mark.parametrize("age", ["30", "d", "-1d", "1w", "1.5h", ""])
def test_bad_ages_are_refused(age: str) -> None:
    with pytest.raises(PermanentError, match="an age is"):
        fields.age_seconds(age)


def test_the_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = _job(settings)
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    got = CliRunner().invoke(cli, ["purge", gone])
    assert got.exit_code == 0 and f"deleted job {gone}: 4 documents, 10 entities" in got.output
    got = CliRunner().invoke(cli, ["purge", "--older-than", "soon"])
    assert got.exit_code == 1 and "an age is" in got.output
