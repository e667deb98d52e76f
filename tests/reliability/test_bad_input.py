"""The bad-input catalogue (docs/bad-input.md): each kind of bad record has one defined outcome,
and no other document of its job is affected. Submitted through the real ``submit_corpus``,
tagged by the real task body; SQLite and PostgreSQL (which rejects NUL in text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from producer.service import submit_corpus
from storage.sql.db import get_database
from storage.core.errors import PermanentError
from storage.sql.schema import document
from storage.core.settings import Settings
from tests.helpers.jobs import stored_entities
from tests.reliability.helpers import doc_rows, make_texts, reference_entities
from worker.batch import run_batch
from tests.helpers.fake_tagger import FakeTagger

GOOD = make_texts(6, seed=1)


def _run(settings: Settings, job_id: str) -> dict[str, dict]:
    with get_database(settings).read() as conn:
        ids = list(conn.execute(select(document.c.id).where(document.c.job_id == job_id)).scalars())
    for i in range(0, len(ids), 8):
        run_batch(settings, job_id=job_id, doc_ids=ids[i:i + 8], tagger=FakeTagger(), topup=False)
    return {r["ext_id"]: r for r in doc_rows(settings, job_id)}


def _outcomes(rows: dict[str, dict]) -> dict[str, tuple[str, str | None]]:
    return {k: (r["status"], r["reason"]) for k, r in rows.items()}


def _good_untouched(settings: Settings, job_id: str, rows: dict[str, dict], good: list[dict[str, str]]) -> None:
    assert all(rows[d["id"]]["status"] == "done" for d in good)
    got = stored_entities(settings, job_id)
    assert {k: n for k, n in got.items() if k[0] in {d["id"] for d in good}} == reference_entities(good)


def test_jsonl_catalogue(settings: Settings, tmp_path: Path) -> None:
    # Given a JSONL file mixing good documents with every kind of bad record
    lines = [json.dumps(d, ensure_ascii=False) for d in GOOD[:3]]
    bad = {
        "empty": "", "blank": " \t\n\u3000 ", "surrogate": "张伟\ud800在北京", "controls": "张伟\x00在\x07北京\x9f。",
        "huge": "a" * 5_000_001, "ascii": "Hello, world. No Chinese here.", "emoji": "😀🎉👍",
        "emoji-mixed": "😀张伟😀在北京",
    }
    lines += [json.dumps({"id": k, "text": v}) for k, v in bad.items()]  # ASCII-escaped: \ud800 stays legal JSON
    lines.append('{"id": "broken", "text": "张伟')  # malformed line (line 12)
    lines.append('["not", "an", "object"]')  # line 13
    lines.append('{"id": "no-text", "body": "张伟"}')  # line 14
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    raw += b'{"id": "latin1", "text": "caf\xe9"}\n'  # invalid UTF-8 (line 15)
    raw += "\n".join(json.dumps(d, ensure_ascii=False) for d in GOOD[3:]).encode("utf-8") + b"\n"
    path = tmp_path / "bad.jsonl"
    path.write_bytes(raw)

    # When it is submitted and tagged
    job_id = submit_corpus(settings, path).job_id
    rows = _run(settings, job_id)

    # Then each record has its documented outcome
    assert {k: v for k, v in _outcomes(rows).items() if not k.startswith("doc-")} == {
        "empty": ("done", "empty"), "blank": ("done", "empty"), "surrogate": ("failed", "surrogate"),
        "controls": ("done", None), "huge": ("failed", "too_large"), "ascii": ("done", None),
        "emoji": ("done", None), "emoji-mixed": ("done", None), "line:12": ("failed", "malformed"),
        "line:13": ("failed", "malformed"), "no-text": ("failed", "missing_field"),
        "line:15": ("failed", "decode_error"),
    }
    got = stored_entities(settings, job_id)
    # Controls become one space each (offsets kept); code-point offsets past astral characters.
    assert ("controls", 0, 2, "PER", "张伟") in got and ("controls", 5, 7, "LOC", "北京") in got
    assert ("emoji-mixed", 1, 3, "PER", "张伟") in got
    assert not any(k[0] in {"ascii", "emoji", "empty", "blank"} for k in got)
    # And every good document is done with exactly the reference entities; the job ends partially_failed
    _good_untouched(settings, job_id, rows, GOOD)
    with get_database(settings).read() as conn:
        assert conn.execute(select(document.c.text).where(document.c.ext_id == "controls",
                                                          document.c.job_id == job_id)).scalar() == "张伟 在 北京 。"
    from producer.service import job_status

    assert job_status(settings, job_id)["state"] == "partially_failed"


def test_csv_and_folder_catalogue(settings: Settings, tmp_path: Path) -> None:
    # Given a CSV with a row lacking its text column, and a CSV without the text column at all
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text("id,text\n" + "".join(f'{d["id"]},{d["text"]}\n' for d in GOOD[:2]) + "short-row\n"
                        + f'{GOOD[2]["id"]},{GOOD[2]["text"]}\n', encoding="utf-8")
    no_col = tmp_path / "nocol.csv"
    no_col.write_text("id,body\n1,张伟\n", encoding="utf-8")
    # And a folder with text files, a binary file, an undecodable file, an empty and a hidden one
    folder = tmp_path / "folder"
    folder.mkdir()
    for d in GOOD[3:]:
        (folder / f'{d["id"]}.txt').write_text(d["text"], encoding="utf-8")
    (folder / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "latin1.txt").write_bytes("café".encode("latin-1"))
    (folder / "empty.txt").write_bytes(b"")
    (folder / ".hidden").write_text("张伟", encoding="utf-8")

    # When they are submitted and tagged
    csv_job = submit_corpus(settings, csv_path).job_id
    csv_rows = _run(settings, csv_job)
    folder_job = submit_corpus(settings, folder).job_id
    folder_rows = _run(settings, folder_job)

    # Then the CSV row without text fails alone; a CSV without the column is refused whole
    assert {k: v for k, v in _outcomes(csv_rows).items() if not k.startswith("doc-")} == {
        "short-row": ("failed", "missing_field")}
    _good_untouched(settings, csv_job, csv_rows, GOOD[:3])
    with pytest.raises(PermanentError, match="no 'text' column"):
        submit_corpus(settings, no_col)
    # And in the folder the binary and undecodable files fail, the empty one is done, hidden is skipped
    assert {k: v for k, v in _outcomes(folder_rows).items() if not k.startswith("doc-")} == {
        "image.bin": ("failed", "binary"), "latin1.txt": ("failed", "decode_error"), "empty.txt": ("done", "empty")}
    folder_good = [dict(d, id=f'{d["id"]}.txt') for d in GOOD[3:]]
    _good_untouched(settings, folder_job, folder_rows, folder_good)
