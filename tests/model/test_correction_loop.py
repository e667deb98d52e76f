"""The correction loop from the command line on the shipped model: a job tagged by it goes out as
Label Studio tasks (with its labeling config) and doccano lines, comes back unedited with exactly
the job's entities as gold, and `shiti model evaluate --job` scores the model on that gold;
offsets stay exact on emoji, full-width and CRLF texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli.main import cli
from producer.service import JobOptions, submit_corpus
from storage.catalog import resolve
from storage.core.settings import DEFAULT_MODELS_DIR, Settings
from storage.sql import queries, repo
from storage.sql.db import dispose_all, get_database
from worker.batch import run_batch
from worker.tagger.loading import load_tagger

SHIPPED = DEFAULT_MODELS_DIR / "shiti-zh-small"
TEXTS = {
    "emoji": "😀😀新华社北京电，国务院总理李克强今天在人民大会堂会见了🇫🇷法国总统马克龙。",
    "wide": "ＡＢＣ公司总裁王小明昨天抵达上海浦东国际机场，随后前往复旦大学演讲。",
    "crlf": "记者从深圳市政府获悉：\r\n华为技术有限公司将在东莞建设新园区。\r\n负责人张伟表示欢迎。",
    "plain": "今天天气很好。",
}


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, str]:
    settings = Settings(data_dir=tmp_path / "data", redis_url="")
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("SHITI_DATABASE_URL", raising=False)
    info = resolve(settings)
    job_id = submit_corpus(settings, [{"id": k, "text": v} for k, v in TEXTS.items()],
                           options=JobOptions(info.name, info.content_hash)).job_id
    ids = [i for i, _ in repo.next_pending(get_database(settings), job_id, limit=10)]
    run_batch(settings, job_id=job_id, doc_ids=ids, tagger=load_tagger(SHIPPED, threads=1), topup=False)
    yield settings, job_id
    dispose_all()


def _entities(settings: Settings, job_id: str) -> dict[str, list[tuple[int, int, str, str]]]:
    return {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"]) for e in r["entities"]]
            for r in queries.iter_export(get_database(settings), job_id)}


def _run(*args: str) -> str:
    got = CliRunner().invoke(cli, list(args))
    assert got.exit_code == 0, got.output
    return got.stdout


@pytest.mark.parametrize("fmt, suffix", [("label-studio", "json"), ("doccano", "jsonl"), ("conll", "conll")])
def test_unedited_export_comes_back_as_the_jobs_entities_and_scores_perfectly(
        job: tuple[Settings, str], tmp_path: Path, fmt: str, suffix: str) -> None:
    settings, job_id = job
    mine = _entities(settings, job_id)
    assert sum(map(len, mine.values())) >= 10 and any(e[3] == "马克龙" for e in mine["emoji"])
    out = tmp_path / f"tasks.{suffix}"
    _run("export", job_id, "--format", fmt, "--out", str(out))
    if fmt == "label-studio":
        assert '<Label value="ORG"/>' in (tmp_path / "tasks.label-config.xml").read_text()
    done = json.loads(_run("data", "import", str(out), "--job", job_id, "--out", str(tmp_path / "train.txt"),
                           "--accept-predictions", "--json"))
    assert done["documents"] == len(TEXTS)
    assert _entities(settings, done["gold_job"]) == mine
    score = json.loads(_run("model", "evaluate", "--model", str(SHIPPED), "--job", job_id, "--json",
                            "--threads", "1"))
    assert score["f1"] == 1.0 and score["sentences"] == len(TEXTS)  # the model against its own entities
    lineage = json.loads((tmp_path / "train.txt.lineage.json").read_text())
    assert lineage["gold_job"] == done["gold_job"] and lineage["model"] == "shiti-zh-small"


def test_edited_corrections_change_the_score_and_sample_skips_them(job: tuple[Settings, str], tmp_path: Path) -> None:
    settings, job_id = job
    ids = _run("sample", job_id, "--n", "2", "--by", "uncertainty", "--format", "ids").splitlines()
    assert len(ids) == 2 and len({i.split("\t")[0] for i in ids}) == 2
    out = tmp_path / "tasks.json"
    _run("export", job_id, "--format", "label-studio", "--out", str(out))
    tasks = json.loads(out.read_text())
    emoji = next(t for t in tasks if t["data"]["doc_id"] == "emoji")
    emoji["annotations"] = [{"id": 1, "result": emoji["predictions"][0]["result"][:-1]}]  # one entity removed
    out.write_text(json.dumps(tasks, ensure_ascii=False))
    done = json.loads(_run("data", "import", str(out), "--job", job_id, "--json"))
    assert (done["documents"], done["skipped"]) == (1, 3)
    n = len(emoji["predictions"][0]["result"])
    score = json.loads(_run("model", "evaluate", "--model", str(SHIPPED), "--job", done["gold_job"], "--json",
                            "--threads", "1"))
    assert score["precision"] == pytest.approx((n - 1) / n) and score["recall"] == 1.0
    left = _run("sample", job_id, "--n", "10", "--format", "ids")
    assert "emoji" not in {line.split("\t")[0] for line in left.splitlines()}
