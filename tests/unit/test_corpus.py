"""Streaming corpus readers: every format, and bad records that fail alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.corpus import detect_format, read_corpus
from storage.core.errors import PermanentError


def test_jsonl_malformed_line_in_the_middle_fails_alone(tmp_path: Path) -> None:
    # Given a JSONL file whose third line is broken
    lines = [json.dumps({"id": f"d{i}", "text": f"第{i}篇"}, ensure_ascii=False) for i in range(5)]
    lines.insert(2, '{"id": "bad", "text": ')
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # When it is read
    records = list(read_corpus(path))
    # Then that record fails with its line number and the others are intact
    assert [r.ext_id for r in records] == ["d0", "d1", "line:3", "d2", "d3", "d4"]
    bad = records[2]
    assert bad.text is None and bad.failure is not None
    assert bad.failure.reason == "malformed" and bad.line == 3 and "line 3" in (bad.failure.error or "")
    assert [r.text for r in records if r.failure is None] == [f"第{i}篇" for i in range(5)]


def test_jsonl_configurable_fields_missing_field_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.ndjson"
    path.write_bytes(
        '{"key": 7, "body": "北京"}\n'.encode()
        + b'{"key": 8}\n'
        + b'{"key": 9, "body": "\xff"}\n'
        + b"\n"
        + b"[1, 2]\n"
    )
    records = list(read_corpus(path, id_field="key", text_field="body"))
    assert records[0].ext_id == "7" and records[0].text == "北京"
    assert records[1].failure and records[1].failure.reason == "missing_field"
    assert records[2].failure and records[2].failure.reason == "decode_error" and records[2].line == 3
    assert records[3].failure and records[3].failure.reason == "malformed" and records[3].line == 5


def test_jsonl_lone_surrogate_escape_is_read_then_rejected_by_validation(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "s", "text": "a\\ud800b"}\n')
    (rec,) = read_corpus(path)
    assert rec.text == "a\ud800b"  # validation (not the reader) rejects it


def test_text_one_document_per_line(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeff张三\r\n\n李四\n".encode() + b"\xc3\x28\n")
    records = list(read_corpus(path))
    assert [(r.ext_id, r.text) for r in records[:2]] == [("1", "张三"), ("3", "李四")]
    assert records[2].failure and records[2].failure.reason == "decode_error" and records[2].line == 4


def test_folder_ids_are_relative_paths_and_binary_files_fail(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("上海", encoding="utf-8")
    (root / "sub" / "b.txt").write_text("广州", encoding="utf-8")
    (root / "img.bin").write_bytes(b"\x89PNG\x00\x00\x01")
    (root / ".hidden").write_text("x")
    records = {r.ext_id: r for r in read_corpus(root)}
    assert set(records) == {"a.txt", "sub/b.txt", "img.bin"}
    assert records["sub/b.txt"].text == "广州"
    assert records["img.bin"].failure and records["img.bin"].failure.reason == "binary"


def test_folder_too_large_file_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "big.txt").write_text("x" * 50)
    (rec,) = read_corpus(root, max_chars=10)
    assert rec.failure and rec.failure.reason == "too_large"


def test_csv_columns_and_missing_value(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('doc,content\n1,"北京,上海"\n2\n3,"多行\n文本"\n', encoding="utf-8")
    records = list(read_corpus(path, id_field="doc", text_field="content"))
    assert [r.ext_id for r in records] == ["1", "2", "3"]
    assert records[0].text == "北京,上海"
    assert records[1].failure and records[1].failure.reason == "missing_field" and records[1].line == 3
    assert records[2].text == "多行\n文本"


def test_csv_without_the_text_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,body\n1,x\n")
    with pytest.raises(PermanentError, match="no 'text' column"):
        list(read_corpus(path))


def test_readers_stream(tmp_path: Path) -> None:
    # A generator: the first record is available before the file is exhausted.
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": "字"}) + "\n" for i in range(10_000)))
    it = read_corpus(path)
    assert next(iter(it)).ext_id == "0"


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "folder"
    assert [detect_format(Path(p)) for p in ["a.jsonl", "a.JSON", "a.csv", "a.txt", "a"]] == [
        "jsonl", "jsonl", "csv", "text", "text"]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no such file"):
        read_corpus(tmp_path / "nope.jsonl")
