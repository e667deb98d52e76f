"""Dictionaries as versioned job inputs, through the service and the worker's batch function: forced
and blocked terms change the rows, every row says where it came from, the job records the
dictionary's version and hash, `rerun --dict` + diff shows exactly what a dictionary change did,
and a bad dictionary or one the model cannot use stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from producer.cli.main import cli
from producer.dictionaries import create_dictionary, list_dictionaries, show_dictionary
from producer.service import (
    diff_jobs,
    export_entities,
    find_entities,
    job_options,
    job_status,
    list_jobs,
    rerun_job,
    submit_corpus,
)
from storage.core.errors import PermanentError
from storage.core.lexicon import LexiconError
from storage.core.settings import Settings
from storage.sql import queries
from storage.sql.db import get_database
from tests.api.conftest import work
from tests.conftest import FAKE_MODEL

@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Jobs of the shipped model (its types, PER/LOC/ORG, are what dictionaries are checked
    against), tagged here by the fake tagger through the worker's batch function (``work``)."""
    return settings.replace(model=Settings().model)


DOCS = [{"id": "a", "text": "张伟在北京的复旦大学见到王芳。"}, {"id": "b", "text": "上海和深圳，没有别的。"}]


def _rows(settings: Settings, job_id: str) -> dict[str, list[tuple[int, int, str, str, str]]]:
    return {r["doc_id"]: [(e["start"], e["end"], e["label"], e["text"], e["source"]) for e in r["entities"]]
            for r in export_entities(settings, job_id)}


def test_a_dictionary_forces_and_blocks_and_is_provenance(settings: Settings) -> None:
    # Given a job with no dictionary (the fake model finds the names of its fixed list)
    plain = submit_corpus(settings, DOCS, options=job_options(settings)).job_id
    work(settings, plain)
    before = _rows(settings, plain)
    assert before["a"] == [(0, 2, "PER", "张伟", "model"), (3, 5, "LOC", "北京", "model"),
                           (6, 10, "ORG", "复旦大学", "model"), (12, 14, "PER", "王芳", "model")]

    # When a dictionary forces 北京的复旦 (overlapping two model entities), agrees on 张伟, blocks 深圳
    v1 = create_dictionary(settings, "mine", "北京的复旦\tORG\n张伟\tPER\n深圳\tLOC\tblock\n".encode())
    job = rerun_job(settings, plain, options=job_options(settings, dictionary="mine")).job_id
    work(settings, job)
    got = _rows(settings, job)

    # Then the forced span replaces what overlapped it, the agreed one is "both", the blocked one is gone,
    # and entities away from the terms are the plain run's
    assert got["a"] == [(0, 2, "PER", "张伟", "both"), (3, 8, "ORG", "北京的复旦", "dict"),
                        (12, 14, "PER", "王芳", "model")]
    assert got["b"] == [(0, 2, "LOC", "上海", "model")]
    # Provenance: status, listing, every export record and the webhook body name version and hash
    st = job_status(settings, job)
    assert (st["dictionary"], st["dictionary_hash"]) == ("mine@1", v1["content_hash"])
    assert {(r["dictionary"], r["dictionary_hash"]) for r in export_entities(settings, job)} == {
        ("mine@1", v1["content_hash"])}
    assert {j["job_id"]: j["dictionary"] for j in list_jobs(settings)["items"]} == {plain: None, job: "mine@1"}
    assert job_status(settings, plain)["dictionary"] is None
    assert {e["source"] for e in find_entities(settings, job)["items"]} == {"both", "dict", "model"}

    # When the dictionary gets a second version and the documents are re-run with it
    v2 = create_dictionary(settings, "mine", "张伟\tPER\n深圳\tLOC\tblock\n")
    assert (v2["version"], v2["dictionary"]) == (2, "mine@2") and v2["content_hash"] != v1["content_hash"]
    again = rerun_job(settings, job, options=job_options(settings, dictionary="mine")).job_id
    work(settings, again)
    # Then the diff shows exactly what dropping the forced entry did
    d = diff_jobs(settings, job, again)
    assert [(e["start"], e["text"]) for e in d["only_a"]] == [(3, "北京的复旦")]
    assert sorted((e["start"], e["text"]) for e in d["only_b"]) == [(3, "北京"), (6, "复旦大学")]
    # An old version stays usable by name@version, and gives the same rows (determinism)
    third = rerun_job(settings, job, options=job_options(settings, dictionary="mine@1")).job_id
    work(settings, third)
    assert _rows(settings, third) == got and job_status(settings, third)["dictionary"] == "mine@1"
    assert [v["version"] for v in show_dictionary(settings, "mine")["versions"]] == [1, 2]


def test_same_entries_again_make_no_new_version(settings: Settings) -> None:
    a = create_dictionary(settings, "d", "北京\tLOC\n上海\tLOC\n")
    b = create_dictionary(settings, "d", "# again\n上海\tLOC\r\n北京\tLOC\tforce\n")
    assert (a["version"], b["version"]) == (1, 1) and a["content_hash"] == b["content_hash"]
    assert [d["dictionary"] for d in list_dictionaries(settings)] == ["d@1"]


def test_unknown_or_unusable_dictionaries_store_nothing(settings: Settings) -> None:
    db = get_database(settings)
    with pytest.raises(PermanentError, match="dictionary 'nope' not found"):
        job_options(settings, dictionary="nope")
    with pytest.raises(LexiconError, match="line 2: type 'GPE' is not one of the model's"):
        create_dictionary(settings, "geo", "北京\tLOC\n巴黎\tGPE\n")
    assert list_dictionaries(settings) == []
    # A dictionary made for another model (the fake model names no types, so GPE is stored) is
    # refused for a job of the shipped model, which does not tag GPE
    fake = settings.replace(model=FAKE_MODEL)
    create_dictionary(fake, "geo", "巴黎\tGPE\n")
    with pytest.raises(PermanentError, match="names GPE, which the model does not tag"):
        job_options(settings, dictionary="geo")
    with pytest.raises(PermanentError, match="version 9 not found"):
        job_options(settings, dictionary="geo@9")
    assert queries.list_jobs(db)[0] == []


def test_cli_dict_commands_and_submit_dict(settings: Settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHITI_MODEL", settings.model)
    monkeypatch.setenv("SHITI_REDIS_URL", "redis://127.0.0.1:9/0")  # no broker: documents stay pending
    good, bad = tmp_path / "good.tsv", tmp_path / "bad.tsv"
    good.write_text("复旦大学\tORG\n上海\t*\tblock\n", encoding="utf-8")
    bad.write_text("复旦大学\tORG\n\n北京\n", encoding="utf-8")
    run = CliRunner().invoke
    out = run(cli, ["dict", "create", "uni", str(bad)])
    assert out.exit_code == 1 and "error: line 3: '北京' has no type" in out.output
    out = run(cli, ["dict", "create", "uni", str(good)])
    assert out.exit_code == 0 and "stored dictionary uni@1: 2 entries" in out.output, out.output
    listed = json.loads(run(cli, ["dict", "list", "--json"]).output)
    assert [(d["dictionary"], d["entries"], d["types"]) for d in listed] == [("uni@1", 2, ["ORG"])]
    shown = run(cli, ["dict", "show", "uni"]).output
    assert "上海\t*\tblock" in shown and "复旦大学\tORG\tforce" in shown
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps(DOCS[0], ensure_ascii=False) + "\n", encoding="utf-8")
    out = run(cli, ["submit", str(corpus), "--json", "--dict", "uni"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.output.strip().splitlines()[-1])["job_id"]
    assert queries.get_job(get_database(settings), job)["dictionary"] == "uni@1"
    out = run(cli, ["submit", str(corpus), "--dict", "other"])
    assert out.exit_code == 1 and "dictionary 'other' not found" in out.output
    assert len(queries.list_jobs(get_database(settings))[0]) == 1
