"""The correction loop on hand-made results, on SQLite and PostgreSQL: export in every annotation
format and import back unchanged gives the job's entities exactly; edits come back exactly; bad
exports are refused with the task named and nothing stored; sampling is deterministic, never
repeats a document, and follows its measure; corrections are gold a diff compares with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from producer.corrections import import_corrections, read_corrections
from producer.review import export, sample
from producer.service import JobOptions, diff_jobs, job_status, submit_corpus
from storage.core.domain import Entity, Outcome
from storage.core.errors import PermanentError
from storage.core.settings import Settings
from storage.sql import gold, queries, repo
from storage.sql.db import Database, get_database
from storage.sql.schema import job
from worker.model.bio import read_bio  # the reader `shiti model train` uses

# Texts whose offsets differ between conventions: emoji (outside the BMP), full-width, \r\n.
TEXTS = {
    "emoji": "😀张伟😀在北京🇨🇳的清华大学读书。",
    "wide": "ＡＢＣ公司的王芳去了上海。",
    "crlf": "李明在深圳。\r\n第二行说华为公司。\n\n第三行：杭州",
    "plain": "没有实体的一句话。",
}
FOUND = {
    "emoji": [("张伟", "PER", 0.95), ("北京", "LOC", 0.55), ("清华大学", "ORG", 0.91)],
    "wide": [("ＡＢＣ公司", "ORG", 0.7), ("王芳", "PER", 0.99), ("上海", "LOC", 0.98)],
    "crlf": [("李明", "PER", 0.6), ("深圳", "LOC", 0.97), ("华为公司", "ORG", 0.8), ("杭州", "LOC", 0.93)],
}


def _finish(db: Database, job_id: str, found: dict[str, list[tuple[str, str, float]]]) -> None:
    pending = repo.next_pending(db, job_id, limit=100)
    claimed = repo.claim(db, job_id=job_id, doc_ids=[i for i, _ in pending], lease_seconds=60, max_attempts=3)
    outcomes = []
    for doc in claimed:
        ents = []
        for word, label, score in found.get(doc.ext_id, []):
            start = doc.text.index(word)
            ents.append(Entity(start, start + len(word), label, word, score))
        outcomes.append(Outcome(doc.id, doc.n_chars, tuple(ents)))
    repo.save_outcomes(db, job_id=job_id, lease_token=claimed[0].lease_token, outcomes=outcomes)


def _job(settings: Settings, texts: dict[str, str] = TEXTS, found: dict = FOUND) -> str:
    db = get_database(settings)
    job_id = submit_corpus(settings, [{"id": k, "text": v} for k, v in texts.items()],
                           options=JobOptions(settings.model_name, "hash-a")).job_id
    _finish(db, job_id, found)
    return job_id


def _entities(settings: Settings, job_id: str) -> dict[str, list[tuple[int, int, str]]]:
    out = {}
    for rec in queries.iter_export(get_database(settings), job_id):
        out[rec["doc_id"]] = [(e["start"], e["end"], e["label"]) for e in rec["entities"]]
    return out


def _export(settings: Settings, job_id: str, fmt: str, **kw: object) -> bytes:
    return "".join(export(settings, job_id, fmt, **kw)).encode("utf-8")


@pytest.mark.parametrize("fmt, tool", [("label-studio", "label-studio"), ("doccano", "doccano"),
                                       ("conll", "conll")])
def test_export_then_import_unedited_gives_back_the_jobs_entities(settings: Settings, fmt: str, tool: str) -> None:
    job_id = _job(settings)
    data = _export(settings, job_id, fmt)
    done = import_corrections(settings, data, tool=tool, job_id=job_id, accept_predictions=True)
    assert done.view()["documents"] == len(TEXTS)
    assert done.gold_job is not None
    assert _entities(settings, done.gold_job) == _entities(settings, job_id)
    status = job_status(settings, done.gold_job)
    assert (status["state"], status["gold_of"], status["done"]) == ("succeeded", job_id, len(TEXTS))
    d = diff_jobs(settings, job_id, done.gold_job)
    assert d["documents"] == len(TEXTS) and d["counts"] == {"only_a": 0, "only_b": 0, "changed": 0}


def test_offsets_follow_each_tools_convention(settings: Settings) -> None:
    job_id = _job(settings)
    ls = {t["data"]["doc_id"]: t for t in json.loads(_export(settings, job_id, "label-studio"))}
    region = ls["emoji"]["predictions"][0]["result"][1]["value"]
    text = TEXTS["emoji"]
    assert text[region["start"]:region["end"]] == region["text"] == "北京"  # code points
    assert ls["emoji"]["predictions"][0]["score"] == 0.55  # the least certain entity
    dc = {r["doc_id"]: r for r in map(json.loads, _export(settings, job_id, "doccano").decode().splitlines())}
    start, end, label = dc["emoji"]["label"][1]
    units = text.encode("utf-16-le")
    assert units[2 * start:2 * end].decode("utf-16-le") == "北京" and label == "LOC"  # UTF-16 units
    assert (start, end) == (region["start"] + 2, region["end"] + 2)  # two emoji before it
    forced = _export(settings, job_id, "doccano", offsets="codepoint").decode()
    assert json.loads(forced.splitlines()[0])["label"][1][:2] == [region["start"], region["end"]]


def test_bio_export_is_what_training_reads(settings: Settings, tmp_path: Path) -> None:
    job_id = _job(settings)
    path = tmp_path / "job.bio"
    path.write_bytes(_export(settings, job_id, "bio"))
    sentences = list(read_bio(path))
    # One sentence per line of each document, line breaks not written, every entity in its tags
    lines = [line for t in TEXTS.values() for line in t.replace("\r\n", "\n").split("\n") if line]
    assert [s.text for s in sentences] == lines
    tagged = {(s.text[i], t) for s in sentences for i, t in enumerate(s.tags) if t != "O"}
    assert ("华", "B-ORG") in tagged and ("杭", "B-LOC") in tagged and ("😀", "O") not in tagged


def test_edited_label_studio_export_gives_exactly_the_edits(settings: Settings, tmp_path: Path) -> None:
    job_id = _job(settings)
    tasks = json.loads(_export(settings, job_id, "label-studio"))
    by_id = {t["data"]["doc_id"]: t for t in tasks}
    text = TEXTS["emoji"]
    # The annotator: keeps 张伟, deletes 北京, retypes 清华大学 as LOC, adds 🇨🇳 as... nothing, adds 读书? no:
    edited = [r for r in by_id["emoji"]["predictions"][0]["result"] if r["value"]["text"] != "北京"]
    edited[1]["value"]["labels"] = ["LOC"]
    by_id["emoji"]["annotations"] = [{"id": 1, "result": edited, "was_cancelled": False,
                                      "created_at": "2026-12-07T10:00:00Z"}]
    new = {"value": {"start": text.index("北京🇨🇳"), "end": text.index("北京🇨🇳") + 4, "text": "北京🇨🇳",
                     "labels": ["LOC"]}, "type": "labels", "from_name": "label", "to_name": "text"}
    by_id["plain"]["annotations"] = [{"id": 2, "result": [], "created_at": "2026-12-07T10:00:00Z"},
                                     {"id": 3, "result": [], "was_cancelled": True}]
    by_id["wide"]["annotations"] = [{"id": 4, "result": [new | {"value": {**new["value"]}}], "was_cancelled": True}]
    by_id["emoji"]["annotations"][0]["result"].append(new)
    out = tmp_path / "train.txt"
    done = import_corrections(settings, json.dumps(tasks).encode(), tool="label-studio", job_id=job_id, out=out,
                              source_name="edited.json")
    assert done.view()["documents"] == 2 and done.view()["skipped"] == 2  # wide: only cancelled; crlf: none
    got = _entities(settings, done.gold_job or "")
    s = text.index
    assert got == {"emoji": [(s("张伟"), s("张伟") + 2, "PER"), (s("北京"), s("北京") + 4, "LOC"),
                             (s("清华大学"), s("清华大学") + 4, "LOC")], "plain": []}
    lineage = json.loads((tmp_path / "train.txt.lineage.json").read_text())
    assert (lineage["job"], lineage["gold_job"], lineage["documents"], lineage["tool"]) == (
        job_id, done.gold_job, 2, "label-studio")
    assert [sent.text for sent in read_bio(out)] == [text, TEXTS["plain"]]
    # diff against the corrections: on the corrected documents only
    d = diff_jobs(settings, job_id, done.gold_job or "")
    assert d["documents"] == 2
    assert d["counts"] == {"only_a": 1, "only_b": 1, "changed": 1}
    # the corrected documents are left out of the next sample
    picked = sample(settings, job_id, n=10, by="uncertainty")
    assert {p.doc_id for p in picked} == {"wide", "crlf"}


def _gold_count(settings: Settings) -> int:
    with get_database(settings).read() as conn:
        return int(conn.execute(select(func.count()).where(job.c.gold_of.is_not(None))).scalar_one())


@pytest.mark.parametrize("mutate, why", [
    (lambda t: t[0]["data"].pop("text"), "no data.text"),
    (lambda t: t[1]["predictions"][0]["result"][0]["value"].update(start=-1), "outside the text"),
    (lambda t: t[1]["predictions"][0]["result"][0]["value"].pop("end"), "lacks value.start, value.end"),
    (lambda t: t[1]["predictions"][0]["result"][0]["value"].update(labels=["MISC"]), "label 'MISC' at 0..5 is not one"),
    (lambda t: t[1]["predictions"][0]["result"][0]["value"].update(end=9, text="ＡＢＣ公司的王芳去"), "overlap"),
    (lambda t: t[0]["data"].update(text=t[0]["data"]["text"] + "!"), "differs from stored document"),
    (lambda t: t.append(json.loads(json.dumps(t[1]))), "the same document"),
    (lambda t: t[0]["data"].update(doc_id="nope"), "has no document 'nope'"),
    (lambda t: t[1]["predictions"][0]["result"][0]["value"].update(start=1), "says 'ＡＢＣ公司' but the text there is 'ＢＣ公司'"),
])
def test_bad_exports_name_the_task_and_store_nothing(settings: Settings, tmp_path: Path, mutate, why: str) -> None:
    job_id = _job(settings)
    tasks = json.loads(_export(settings, job_id, "label-studio"))
    for i, t in enumerate(tasks):
        t["id"] = 100 + i
    mutate(tasks)
    out = tmp_path / "train.txt"
    with pytest.raises(PermanentError, match=why) as err:
        import_corrections(settings, json.dumps(tasks).encode(), tool="label-studio", job_id=job_id, out=out,
                           accept_predictions=True, model="shiti-zh-small")
    assert "task 10" in str(err.value)
    assert not out.exists() and _gold_count(settings) == 0


def test_doccano_offsets_inside_an_emoji_are_refused(settings: Settings) -> None:
    line = json.dumps({"text": "😀张伟", "label": [[1, 4, "PER"]]})
    with pytest.raises(PermanentError, match="inside the two UTF-16 units"):
        read_corrections(line.encode(), "doccano", ["PER"])
    ok, _ = read_corrections(json.dumps({"text": "😀张伟", "label": [[2, 4, "PER"]]}).encode(), "doccano", ["PER"])
    assert ok[0].spans == ((1, 3, "PER"),)


def test_an_export_of_nothing_annotated_or_not_utf8_is_refused(settings: Settings) -> None:
    with pytest.raises(PermanentError, match="no annotated task.*--accept-predictions"):
        read_corrections(json.dumps([{"id": 1, "data": {"text": "x"}, "predictions": []}]).encode(),
                         "label-studio", None)
    with pytest.raises(PermanentError, match="not UTF-8"):
        read_corrections(b"\xff\xfe[", "label-studio", None)
    with pytest.raises(PermanentError, match="--out train.txt, --job JOB"):
        import_corrections(settings, b"[]", tool="label-studio")


def test_sampling_is_deterministic_never_repeats_and_follows_its_measure(settings: Settings) -> None:
    texts = {f"d{i:03d}": f"第{i}号文件，张伟{i}在北京。" for i in range(60)}
    found = {k: [("北京", "LOC", round(0.5 + (int(k[1:]) * 37 % 60) / 120, 4))] for k in texts if int(k[1:]) % 5}
    job_id = _job(settings, texts, found)
    least = {k: v[0][2] for k, v in found.items()}
    picks = sample(settings, job_id, n=10, by="uncertainty")
    assert [p.doc_id for p in picks] == sorted(least, key=lambda k: least[k])[:10]
    assert picks == sample(settings, job_id, n=10, by="uncertainty")
    every = sample(settings, job_id, n=100, by="uncertainty")
    assert len(every) == 60 == len({p.doc_id for p in every})
    assert {p.doc_id for p in every[-12:]} == set(texts) - set(found)  # no entity: last
    r1, r2 = (sample(settings, job_id, n=20, by="random", seed=s) for s in (1, 2))
    assert r1 == sample(settings, job_id, n=20, by="random", seed=1) and r1 != r2
    assert len({p.doc_id for p in r1}) == 20
    # disagreement with a second job over the same documents
    other = _job(settings, texts, {k: [("张伟" + k[1:].lstrip("0"), "PER", 0.9)] for k in list(texts)[:7]})
    picked = sample(settings, job_id, n=100, by="disagreement", against=other)
    counts = {p.doc_id: p.measure for p in picked}
    assert all(v > 0 for v in counts.values()) and counts["d001"] == 2 and counts["d000"] == 1
    assert len(picked) == len(set(found) | set(list(texts)[:7]))
    with pytest.raises(PermanentError, match="--against"):
        sample(settings, job_id, n=5, by="uncertainty", against=other)


def test_sampled_documents_export_in_their_order(settings: Settings) -> None:
    job_id = _job(settings)
    picks = sample(settings, job_id, n=2, by="uncertainty")
    tasks = json.loads("".join(export(settings, job_id, "label-studio", rows=[p.row_id for p in picks])))
    assert [t["data"]["doc_id"] for t in tasks] == [p.doc_id for p in picks] == ["emoji", "crlf"]
    assert gold.corrected_ids(get_database(settings), job_id) == set()
