"""Traditional text through a job: folded before the model by default, offsets and entity texts the
document's own, the fold recorded as provenance, and `--no-fold` + diff showing what it did."""

from __future__ import annotations

import json

from click.testing import CliRunner

from producer.service import diff_jobs, export_entities, job_options, job_status, rerun_job, submit_corpus
from producer.cli.main import cli
from storage.core.fold import fold_id
from storage.core.settings import Settings
from storage.sql import queries
from storage.sql.db import get_database
from tests.api.conftest import work

TRADITIONAL = {"hk1": "記者張偉從廣州報道，中國銀行在深圳開業。", "s1": "张伟在北京。"}


def _entities(settings: Settings, job_id: str) -> dict[str, list[tuple[int, int, str, str]]]:
    return {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"]) for e in r["entities"]]
            for r in export_entities(settings, job_id)}


def test_traditional_documents_are_folded_by_default_and_keep_their_own_text(settings: Settings) -> None:
    docs = [{"id": k, "text": v} for k, v in TRADITIONAL.items()]
    job = submit_corpus(settings, docs, options=job_options(settings)).job_id
    work(settings, job)
    got = _entities(settings, job)
    # The fake model knows only the Simplified names (张伟, 广州, 中国银行, 深圳); folded, it finds
    # them in Traditional text, and every row holds the document's own characters at exact offsets
    assert got["hk1"] == [(2, 4, "PER", "張偉"), (5, 7, "LOC", "廣州"), (10, 14, "ORG", "中國銀行"),
                          (15, 17, "LOC", "深圳")]
    assert got["s1"] == [(0, 2, "PER", "张伟"), (3, 5, "LOC", "北京")]
    text = TRADITIONAL["hk1"]
    assert all(text[s:e] == t for s, e, _, t in got["hk1"])
    # Provenance: the job, its status and every export record name the fold and its table hash
    assert job_status(settings, job)["fold"] == fold_id()
    assert {r["fold"] for r in export_entities(settings, job)} == {fold_id()}

    # When the same documents are re-run without the fold, Then the diff shows exactly what it did
    plain = rerun_job(settings, job, options=job_options(settings, fold=False)).job_id
    work(settings, plain)
    assert job_status(settings, plain)["fold"] is None
    assert _entities(settings, plain) == {"hk1": [(15, 17, "LOC", "深圳")], "s1": got["s1"]}
    d = diff_jobs(settings, job, plain)
    assert sorted(e["text"] for e in d["only_a"]) == ["中國銀行", "廣州", "張偉"] and d["only_b"] == []


def test_cli_submit_no_fold_records_no_fold(settings: Settings, tmp_path, monkeypatch) -> None:
    corpus = tmp_path / "hk.jsonl"
    corpus.write_text(json.dumps({"id": "1", "text": TRADITIONAL["hk1"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHITI_REDIS_URL", "redis://127.0.0.1:9/0")  # no broker: documents stay pending
    jobs = {}
    for flag in ("--fold", "--no-fold"):
        got = CliRunner().invoke(cli, ["submit", str(corpus), "--json", flag])
        assert got.exit_code == 0, got.output
        jobs[flag] = json.loads(got.output.strip().splitlines()[-1])["job_id"]
    db = get_database(settings)
    assert queries.get_job(db, jobs["--fold"])["fold"] == fold_id()
    assert queries.get_job(db, jobs["--no-fold"])["fold"] is None
