"""The corpus view through a real worker and the shipped model: the worker whose save finishes
the job builds its view (no read asks first), and every count in it equals a brute-force count
over the rows the worker stored, with Traditional spellings and a dictionary's aliases merged."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from producer.dictionaries import create_dictionary
from producer.service import job_options, submit_corpus
from storage.broker.redis_server import RedisServer
from storage.core.canon import aliases_of
from storage.core.lexicon import parse
from storage.core.settings import DEFAULT_MODEL, Settings
from storage.sql import groups
from storage.sql.db import get_database
from storage.sql.schema import entity, job
from tests.helpers.jobs import wait_terminal, write_corpus
from tests.helpers.processes import WorkerPool

pytestmark = pytest.mark.integration

ENTRIES = "北京大学\tORG\tforce\t北大|北京大學\n"
EXTRA = [
    {"id": "t1", "text": "臺灣的張偉昨天去了北京大學，北大的學生歡迎他。"},
    {"id": "t2", "text": "台湾的张伟今天去了北京大学，北大的学生欢迎他。"},
    {"id": "t3", "text": "张伟说，台湾和北京的合作越来越多。"},
]


def test_the_worker_builds_the_view_and_its_counts_are_exact(tmp_path: Path, redis_server: RedisServer,
                                                            workers: WorkerPool) -> None:
    docs = write_corpus(tmp_path / "corpus.jsonl", n=24, long_chars=2000) + EXTRA
    settings = Settings(data_dir=tmp_path / "data", redis_url=redis_server.url, model=str(DEFAULT_MODEL),
                        queue=f"q-{uuid.uuid4().hex[:8]}", batch_docs=8)
    create_dictionary(settings, "unis", ENTRIES)
    workers.start(settings, timeout=120)
    job_id = submit_corpus(settings, docs, options=job_options(settings, dictionary="unis")).job_id
    assert wait_terminal(settings, job_id, timeout=300)["state"] == "succeeded"

    db = get_database(settings)
    # Built by the builder process the worker starts (worker/grouper.py): grouped after the
    # finish, over every done document, before any read asked for it.
    deadline = time.monotonic() + 60
    while True:
        with db.read() as conn:
            row = conn.execute(select(job.c.grouped_at, job.c.grouped_done, job.c.done, job.c.finished_at)
                               .where(job.c.id == job_id)).one()
        if row.grouped_at is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row.grouped_at is not None and row.grouped_at >= row.finished_at and row.grouped_done == row.done
    with db.read() as conn:
        rows = conn.execute(select(entity.c.document_id, entity.c.label, entity.c.text)
                            .where(entity.c.job_id == job_id)).all()

    aliases = aliases_of(parse(ENTRIES))
    mentions: dict[tuple[str, str], int] = defaultdict(int)
    documents: dict[tuple[str, str], set[int]] = defaultdict(set)
    for d, label, text in rows:
        key = (label, aliases.resolve(label, text)[0])
        mentions[key] += 1
        documents[key].add(d)
    view = groups.group_page(db, job_id, limit=10_000)
    assert {(g["label"], g["canon"]): (g["mentions"], g["documents"]) for g in view} == \
        {k: (mentions[k], len(documents[k])) for k in mentions}
    forms = {(g["label"], g["canon"]): {f["text"] for f in g["forms"]} for g in view}
    # The shipped model finds these in both scripts; the fold and the alias make them one each.
    assert {"北京大学", "北京大學", "北大"} <= forms[("ORG", "北京大学")]
    assert {"张伟", "張偉"} <= forms[("PER", "张伟")]
    assert {"台湾", "臺灣"} <= forms[("LOC", "台湾")]
    assert [g["name"] for g in groups.find_groups(db, job_id, "北大")] == ["北京大学"]
