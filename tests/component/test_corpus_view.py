"""The corpus view on SQLite and PostgreSQL: canonical entities merge Traditional, full-width and
middle-dot spellings and dictionary aliases with exact document counts; pairs count documents
together; "documents mentioning X" lists each document once, paged, whatever the page size; a
running job's view is rebuilt as documents finish and a finished one is complete; purge drops it.
Every figure is checked against a brute-force count over the stored entities."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select, update

from producer.dictionaries import create_dictionary, find
from producer.service import JobOptions, purge, submit_corpus
from storage.core.canon import aliases_of, canonical
from storage.core.errors import InvalidTransition
from storage.core.lexicon import parse
from storage.core.settings import Settings
from storage.sql import groups
from storage.sql.db import get_database
from storage.sql.schema import entity, entity_group, entity_pair, entity_surface, job
from tests.component.test_corrections import _finish, _job

TEXTS = {
    "d1": "臺灣的台湾人张伟去了北京大学。",
    "d2": "台湾和ＩＢＭ合作，北大的张伟说。",
    "d3": "IBM在北京，迈克尔・乔丹来了。",
    "d4": "迈克尔·乔丹和张伟在北京。",
    "d5": "没有实体。",
}
FOUND = {
    "d1": [("臺灣", "LOC", 0.9), ("台湾", "LOC", 0.9), ("张伟", "PER", 0.9), ("北京大学", "ORG", 0.9)],
    "d2": [("台湾", "LOC", 0.9), ("ＩＢＭ", "ORG", 0.9), ("北大", "ORG", 0.9), ("张伟", "PER", 0.9)],
    "d3": [("IBM", "ORG", 0.9), ("北京", "LOC", 0.9), ("迈克尔・乔丹", "PER", 0.9)],
    "d4": [("迈克尔·乔丹", "PER", 0.9), ("张伟", "PER", 0.9), ("北京", "LOC", 0.9)],
}


def _by_name(settings: Settings, job_id: str) -> dict[tuple[str, str], dict]:
    db = get_database(settings)
    groups.ensure(db, job_id)
    return {(g["label"], g["name"]): g for g in groups.group_page(db, job_id, limit=1000)}


def test_spellings_and_aliases_are_one_entity_with_exact_counts(settings: Settings) -> None:
    create_dictionary(settings, "unis", "北京大学\tORG\tforce\t北大|北京大學\n")
    ref = find(settings, "unis")
    db = get_database(settings)
    job_id = submit_corpus(settings, [{"id": k, "text": v} for k, v in TEXTS.items()],
                           options=JobOptions(settings.model_name, "hash-a", dictionary=ref)).job_id
    _finish(db, job_id, FOUND)
    got = _by_name(settings, job_id)
    taiwan = got[("LOC", "台湾")]  # 台湾 is mentioned twice, 臺灣 once: the commonest form names it
    assert (taiwan["mentions"], taiwan["documents"]) == (3, 2)  # d1 holds both spellings: one document
    assert [f["text"] for f in taiwan["forms"]] == ["台湾", "臺灣"]
    assert (got[("ORG", "北京大学")]["mentions"], got[("ORG", "北京大学")]["documents"]) == (2, 2)  # the alias 北大
    ibm = got[("ORG", "IBM")] if ("ORG", "IBM") in got else got[("ORG", "ＩＢＭ")]
    assert (ibm["canon"], ibm["documents"]) == ("IBM", 2)
    assert got[("PER", "迈克尔·乔丹")]["documents"] == 2 or got[("PER", "迈克尔・乔丹")]["documents"] == 2
    assert got[("PER", "张伟")]["documents"] == 3 and ("LOC", "北京") in got
    ranks = [g["rank"] for g in groups.group_page(db, job_id, limit=1000)]
    assert ranks == list(range(1, len(got) + 1))
    assert groups.group_page(db, job_id, limit=1)[0]["name"] == "张伟"  # most documents first
    # Looking a name up by any spelling or alias finds its group.
    for spelling in ("北大", "北京大學", "北京大学"):
        assert [g["name"] for g in groups.find_groups(db, job_id, spelling)] == ["北京大学"]
    assert [g["name"] for g in groups.find_groups(db, job_id, "臺灣", label="LOC")] == ["台湾"]
    assert groups.find_groups(db, job_id, "台湾", label="PER") == []


def test_pairs_count_documents_together(settings: Settings) -> None:
    job_id = _job(settings, TEXTS, FOUND)
    db = get_database(settings)
    groups.ensure(db, job_id)
    found = {frozenset((p["a"]["name"], p["b"]["name"])): p for p in groups.pairs(db, job_id, limit=100)}
    assert frozenset(("张伟", "北京")) not in found  # together in d4 only: under MIN_PAIR_DOCUMENTS
    assert found[frozenset(("张伟", "台湾"))]["documents"] == 2
    # 张伟 in 3 documents, 台湾 in 2, both in 2: Jaccard 2 / 3.
    assert found[frozenset(("张伟", "台湾"))]["jaccard"] == pytest.approx(2 / 3, abs=1e-4)
    assert all(p["documents"] >= groups.MIN_PAIR_DOCUMENTS for p in found.values())
    zhang = groups.find_groups(db, job_id, "张伟")[0]["rank"]
    assert all(zhang in (p["a"]["rank"], p["b"]["rank"]) for p in groups.pairs(db, job_id, rank=zhang))


def _brute(settings: Settings, job_id: str) -> tuple[dict, Counter]:
    """Groups {(label, canon): (mentions, documents)} and pair document counts, from the rows."""
    with get_database(settings).read() as conn:
        rows = conn.execute(select(entity.c.document_id, entity.c.label, entity.c.text)
                            .where(entity.c.job_id == job_id)).all()
    mentions: Counter = Counter()
    docs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for d, label, t in rows:
        key = (label, canonical(t))
        mentions[key] += 1
        docs[key].add(d)
    by_doc: dict[int, set] = defaultdict(set)
    for key, ds in docs.items():
        for d in ds:
            by_doc[d].add(key)
    together: Counter = Counter()
    for keys in by_doc.values():
        for a, b in combinations(sorted(keys), 2):
            together[frozenset((a, b))] += 1
    return {k: (mentions[k], len(docs[k])) for k in mentions}, together


WORDS = ["台湾", "臺灣", "北京", "ＩＢＭ", "IBM", "张伟", "張偉", "乔丹", "华为", "華為"]


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(["PER", "LOC"])), max_size=6),
                min_size=1, max_size=12))
def test_groups_pairs_and_mentions_equal_a_brute_force_count(sqlite_settings: Settings,
                                                            corpus: list[list[tuple[str, str]]]) -> None:
    texts, found = {}, {}
    for i, ents in enumerate(corpus):
        words = list(dict.fromkeys(ents))  # one mention per (word, type) and document position
        texts[f"d{i}"] = "，".join(w for w, _ in words) + f"。{i}"
        found[f"d{i}"] = [(w, label, 0.9) for w, label in words]
    db = get_database(sqlite_settings)
    job_id = submit_corpus(sqlite_settings, [{"id": k, "text": v} for k, v in texts.items()],
                           options=JobOptions(sqlite_settings.model_name, "hash-a")).job_id
    # Entities at each word's first position only: a word twice in one document is one mention.
    fixed = {k: [(w, label, s) for w, label, s in v if texts[k].index(w) >= 0] for k, v in found.items()}
    _finish(db, job_id, {k: list({(w, label): (w, label, s) for w, label, s in v}.values()) for k, v in fixed.items()})
    want, together = _brute(sqlite_settings, job_id)
    groups.build(db, job_id, min_pair_documents=1)
    view = groups.group_page(db, job_id, limit=10_000)
    assert {(g["label"], g["canon"]): (g["mentions"], g["documents"]) for g in view} == want
    key = {g["rank"]: (g["label"], g["canon"]) for g in view}
    got_pairs = {frozenset((key[p["a"]["rank"]], key[p["b"]["rank"]])): p["documents"]
                 for p in groups.pairs(db, job_id, limit=100_000)}
    assert got_pairs == dict(together)
    for g in view:  # every page size lists each mentioning document once, in first-mention order
        for size in (1, 2, 1000):
            seen, after = [], 0
            while True:
                items, after = groups.mention_page(db, job_id, g["rank"], after=after, limit=size)
                seen += [i["doc_id"] for i in items]
                if after is None:
                    break
            assert len(seen) == len(set(seen)) == g["documents"]


def test_a_running_job_is_regrouped_as_it_goes_and_complete_when_finished(settings: Settings,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = get_database(settings)
    job_id = _job(settings, TEXTS, FOUND)
    state = groups.ensure(db, job_id)
    assert state.complete and state.documents == 5
    # The job is reopened with one document fewer done (as a retry does): the view is stale.
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(status="running", done=job.c.done - 1,
                                                                   finished_at=None))
    state = groups.ensure(db, job_id)
    assert not state.complete and state.documents == 5  # built moments ago: served as it is, marked incomplete
    monkeypatch.setattr(groups, "REGROUP_SECONDS", 0.0)
    state = groups.ensure(db, job_id)
    assert not state.complete and state.documents == 4  # rebuilt over what is done now
    # It finishes: the view is rebuilt at once, whatever its age, and complete.
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(status="succeeded", done=job.c.done + 1,
                                                                   finished_at=time.time()))
    monkeypatch.setattr(groups, "REGROUP_SECONDS", 3600.0)
    state = groups.ensure(db, job_id)
    assert state.complete and state.documents == 5
    # A large running job with no view yet: a clear "not yet".
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(status="running", grouped_at=None,
                                                                   finished_at=None))
    with pytest.raises(InvalidTransition, match="grouped when it finishes"):
        groups.ensure(db, job_id, live_limit=1)


def test_purge_drops_the_view(settings: Settings) -> None:
    job_id = _job(settings, TEXTS, FOUND)
    groups.ensure(get_database(settings), job_id)
    purge(settings, job_id=job_id)
    with get_database(settings).read() as conn:
        for t in (entity_group, entity_surface, entity_pair):
            assert conn.execute(select(func.count()).select_from(t).where(t.c.job_id == job_id)).scalar() == 0


def test_aliases_of_a_dictionary() -> None:
    terms = parse("北京大学\tORG\tforce\t北大|北京大學\n北大\tPER\tforce\n清华\t*\tblock\t清華\n")
    a = aliases_of(terms)
    assert a.resolve("ORG", "北大") == ("北京大学", "北京大学")
    assert a.resolve("ORG", "北京大學") == ("北京大学", "北京大学")
    assert a.resolve("PER", "北大") == ("北大", "北大")
    assert a.resolve("LOC", "清華") == ("清华", None)  # a block entry's aliases group nothing


def test_the_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from producer.cli.main import cli

    job_id = _job(settings, TEXTS, FOUND)
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    got = CliRunner().invoke(cli, ["entities", job_id, "--group", "--json", "--limit", "3"])
    assert got.exit_code == 0, got.output
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    assert rows == groups.group_page(get_database(settings), job_id, limit=3)
    got = CliRunner().invoke(cli, ["entities", job_id, "--mentioning", "臺灣", "--format", "csv"])
    assert got.exit_code == 0 and got.stdout.splitlines()[0] == "doc_id,count,mentions"
    assert [line.split(",")[0] for line in got.stdout.splitlines()[1:]] == ["d1", "d2"]
    assert "LOC 台湾: 2 documents, 3 mentions (台湾|臺灣)" in got.stderr
    got = CliRunner().invoke(cli, ["cooccur", job_id, "--with", "张伟", "--json"])
    assert got.exit_code == 0
    pairs = [json.loads(line) for line in got.stdout.splitlines()]
    assert [(p["a"]["name"], p["b"]["name"], p["documents"]) for p in pairs] == [("张伟", "台湾", 2)]
    got = CliRunner().invoke(cli, ["entities", job_id, "--mentioning", "无名氏"])
    assert got.exit_code == 2 and "mentions no entity '无名氏'" in got.stderr
    got = CliRunner().invoke(cli, ["entities", job_id, "--group", "--mentioning", "x"])
    assert got.exit_code == 2 and "not both" in got.stderr


def test_one_build_at_a_time(settings: Settings) -> None:
    db = get_database(settings)
    job_id = _job(settings, TEXTS, FOUND)
    now = time.time()
    with db.write() as conn:  # a builder is at work on it
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=now))
    started = time.monotonic()
    with pytest.raises(InvalidTransition, match="being grouped"):
        groups.ensure(db, job_id, wait=0.3)  # waits for it a while, then "ask again"
    assert time.monotonic() - started >= 0.3
    # A builder that ends while a read waits for it (the worker grouping the job it just finished):
    # the read serves what that builder stored.
    def finish_the_other_build() -> None:
        time.sleep(0.2)
        groups._build(db, job_id, top_pairs=groups.TOP_PAIRS, min_pair_documents=groups.MIN_PAIR_DOCUMENTS)

    other = threading.Thread(target=finish_the_other_build)
    other.start()
    state = groups.ensure(db, job_id, wait=30)
    other.join()
    assert state.complete
    with db.write() as conn:  # back to nothing built, and the builder still at work
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=now, grouped_at=None))
    # A builder that died an hour ago: the next read takes its claim over and builds.
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=now - groups.BUILD_STALE_SECONDS - 1))
    assert groups.ensure(db, job_id).complete
    with db.read() as conn:
        assert conn.execute(select(job.c.grouping_at).where(job.c.id == job_id)).scalar() is None
    # A finished job whose view is stale while another build runs: the last view is served meanwhile.
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=time.time(), grouped_done=0))
    state = groups.ensure(db, job_id)
    assert not state.complete and state.documents == 0


def test_the_builder_process_builds_a_finished_job_and_gives_way_to_another_builder(settings: Settings) -> None:
    # `python -m worker.grouper JOB` (what a worker starts after a job's last save) builds the
    # view in its own process, on the settings it is given; one finding the job claimed exits 0.
    job_id = _job(settings, TEXTS, FOUND)
    db = get_database(settings)
    with db.read() as conn:
        assert conn.execute(select(job.c.grouped_at).where(job.c.id == job_id)).scalar() is None
    from worker import grouper

    now = time.time()
    with db.write() as conn:  # another builder holds it
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=now))
    grouper.start(settings, job_id)
    assert grouper._STARTED[-1].wait(timeout=120) == 0
    with db.read() as conn:
        assert conn.execute(select(job.c.grouped_at).where(job.c.id == job_id)).scalar() is None
    with db.write() as conn:
        conn.execute(update(job).where(job.c.id == job_id).values(grouping_at=None))
    grouper.start(settings, job_id)
    assert grouper._STARTED[-1].wait(timeout=120) == 0
    with db.read() as conn:
        row = conn.execute(select(job.c.grouped_at, job.c.grouped_done, job.c.done, job.c.grouping_at)
                           .where(job.c.id == job_id)).one()
    assert row.grouped_at is not None and row.grouped_done == row.done and row.grouping_at is None
    assert groups.ensure(db, job_id).complete
    assert _by_name(settings, job_id)[("PER", "张伟")]["documents"] == 3


def test_a_batch_reports_the_job_it_finished_once(settings: Settings) -> None:
    from storage.sql import repo
    from tests.helpers.fake_tagger import FakeTagger
    from worker.batch import run_batch

    db = get_database(settings)
    job_id = submit_corpus(settings, [{"id": f"d{i}", "text": f"张伟在北京{i}。"} for i in range(6)],
                           options=JobOptions(settings.model_name, None)).job_id
    ids = [i for i, _ in repo.next_pending(db, job_id, limit=10)]
    finished: list[str] = []
    for chunk in (ids[:2], ids[2:4], ids[4:]):
        run_batch(settings, job_id=job_id, doc_ids=chunk, tagger=FakeTagger(), topup=False,
                  on_finished=finished.append)
    assert finished == [job_id]
