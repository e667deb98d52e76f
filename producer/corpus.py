"""Streaming corpus readers: JSONL, plain text (one document per line), a folder of files, CSV.

Readers never load a whole corpus and never raise on a bad record: a record that cannot be
read becomes a ``Record`` with ``failure`` set (reason, message) and its line number.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producer.validation import Checked, decode_utf8, rejected
from storage.core.domain import Reason
from storage.core.errors import PermanentError

FORMATS = ("jsonl", "text", "folder", "csv")
_BINARY_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class Record:
    """One document as read: a decoded ``text``, or a ``failure`` found while reading."""

    ext_id: str
    line: int
    text: str | None = None
    failure: Checked | None = None


def detect_format(path: Path) -> str:
    """Guess the format from the path: a directory, ``.jsonl/.ndjson/.json``, ``.csv``, else text."""
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "text"


def read_corpus(source: str | Path | Iterable[Mapping[str, Any]], *, fmt: str | None = None,
                id_field: str = "id", text_field: str = "text", max_chars: int = 5_000_000) -> Iterator[Record]:
    """Stream the records of ``source`` (a path, or an iterable of dicts).

    Raises:
        PermanentError: the source does not exist, the format is unknown, or a CSV header
            lacks the text column (nothing in the file could be read).
    """
    if not isinstance(source, (str, Path)):
        return read_dicts(source, id_field=id_field, text_field=text_field)
    path = Path(source)
    if not path.exists():
        raise PermanentError(f"no such file or directory: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return read_jsonl(path, id_field=id_field, text_field=text_field)
    if fmt == "text":
        return read_lines(path)
    if fmt == "folder":
        return read_folder(path, max_chars=max_chars)
    if fmt == "csv":
        return read_csv(path, id_field=id_field, text_field=text_field)
    raise PermanentError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")


def read_dicts(items: Iterable[Mapping[str, Any]], *, id_field: str = "id",
               text_field: str = "text") -> Iterator[Record]:
    """Records from in-memory dicts (API uploads, tests); missing ids become the position."""
    for n, item in enumerate(items, start=1):
        yield _from_mapping(item, n, id_field=id_field, text_field=text_field)


@dataclass(frozen=True, slots=True)
class JsonProblem:
    """Why a JSON text could not be parsed."""

    message: str


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that never raises: invalid JSON, nesting deeper than the parser's recursion
    limit and integers too long to convert all come back as a :class:`JsonProblem`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonProblem(f"invalid JSON: {exc.msg} at character {exc.pos}")
    except RecursionError:
        return JsonProblem("invalid JSON: nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. an integer past sys.get_int_max_str_digits()
        return JsonProblem(f"invalid JSON: {exc}"[:200])


def _from_mapping(item: Any, n: int, *, id_field: str, text_field: str) -> Record:
    if not isinstance(item, Mapping):
        return Record(f"line:{n}", n, failure=rejected(Reason.MALFORMED, f"line {n}: not a JSON object"))
    raw_id = item.get(id_field)
    if raw_id is not None and not isinstance(raw_id, (str, int, float, bool)):
        # An id must be a scalar: str() of a nested value is not an id anyone would query by.
        return Record(f"line:{n}", n, failure=rejected(Reason.MALFORMED, f"line {n}: {id_field!r} is not a string or number"))
    ext_id = _id_text(raw_id) if raw_id is not None and raw_id != "" else f"line:{n}"
    text = item.get(text_field)
    if text is None:
        return Record(ext_id, n, failure=rejected(Reason.MISSING_FIELD, f"line {n}: no {text_field!r} field"))
    if not isinstance(text, str):
        return Record(ext_id, n, failure=rejected(Reason.MALFORMED, f"line {n}: {text_field!r} is not a string"))
    return Record(ext_id, n, text=text)


def _id_text(raw: str | int | float | bool) -> str:
    try:
        return str(raw)
    except ValueError:  # an int with more digits than sys.get_int_max_str_digits() converts
        return "\x00"  # not storable: the document becomes a bad_id row


def read_jsonl(path: Path, *, id_field: str = "id", text_field: str = "text") -> Iterator[Record]:
    """One JSON object per line; blank lines are skipped."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            decoded = decode_utf8(raw.removeprefix(b"\xef\xbb\xbf") if n == 1 else raw)
            if isinstance(decoded, Checked):
                yield Record(f"line:{n}", n, failure=_with_line(decoded, n))
                continue
            item = parse_json(decoded)
            if isinstance(item, JsonProblem):
                yield Record(f"line:{n}", n, failure=rejected(Reason.MALFORMED, f"line {n}: {item.message}"))
                continue
            yield _from_mapping(item, n, id_field=id_field, text_field=text_field)


def read_lines(path: Path) -> Iterator[Record]:
    """One document per non-empty line; the id is the line number."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            raw = raw.rstrip(b"\r\n")
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw:
                continue
            decoded = decode_utf8(raw)
            if isinstance(decoded, Checked):
                yield Record(str(n), n, failure=_with_line(decoded, n))
            else:
                yield Record(str(n), n, text=decoded)


def read_folder(root: Path, *, max_chars: int = 5_000_000) -> Iterator[Record]:
    """One document per regular, non-hidden file (recursive, sorted); id = relative path.

    A file with NUL bytes in its first 8 KiB is ``binary``; one too big to possibly fit
    ``max_chars`` is ``too_large`` without being read.
    """
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for n, path in enumerate(files, start=1):
        ext_id = path.relative_to(root).as_posix()
        size = path.stat().st_size
        if size > 4 * max_chars:  # UTF-8 is at most 4 bytes per character
            yield Record(ext_id, n, failure=rejected(Reason.TOO_LARGE, f"{size} bytes > 4 × {max_chars} characters"))
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            yield Record(ext_id, n, failure=rejected(Reason.MALFORMED, f"cannot read the file: {exc.strerror}"))
            continue
        if b"\x00" in raw[:_BINARY_SNIFF]:
            yield Record(ext_id, n, failure=rejected(Reason.BINARY, "binary file (NUL bytes)"))
            continue
        decoded = decode_utf8(raw.removeprefix(b"\xef\xbb\xbf"))
        if isinstance(decoded, Checked):
            yield Record(ext_id, n, failure=decoded)
        else:
            yield Record(ext_id, n, text=decoded)


def read_csv(path: Path, *, id_field: str = "id", text_field: str = "text") -> Iterator[Record]:
    """CSV with a header row. Rows lacking the text value fail with ``missing_field``.

    Raises:
        PermanentError: the header has no ``text_field`` column.
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    fh = io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(fh)
    try:
        header = list(reader.fieldnames or [])
    except csv.Error as exc:
        fh.close()
        raise PermanentError(f"{path}: unreadable CSV header: {exc}") from None
    if text_field not in header:
        fh.close()
        shown = repr(header) if len(repr(header)) <= 300 else repr(header)[:300] + "…"
        raise PermanentError(f"{path}: CSV header {shown} has no {text_field!r} column")

    def rows() -> Iterator[Record]:
        with fh:
            n = 0
            while True:
                n += 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # a broken quote, a field past the size limit
                    line = reader.line_num
                    yield Record(f"row:{n}", line, failure=rejected(Reason.MALFORMED, f"line {line}: {exc}"))
                    continue
                line = reader.line_num
                raw_id = row.get(id_field)
                ext_id = raw_id if raw_id else f"row:{n}"
                text = row.get(text_field)
                if text is None:
                    yield Record(ext_id, line, failure=rejected(
                        Reason.MISSING_FIELD, f"line {line}: row has no {text_field!r} value"))
                else:
                    # Undecodable bytes arrive as U+DC80..U+DCFF; validation rejects them.
                    yield Record(ext_id, line, text=text)

    return rows()


def _with_line(checked: Checked, line: int) -> Checked:
    return rejected(checked.reason or Reason.DECODE_ERROR, f"line {line}: {checked.error}")
