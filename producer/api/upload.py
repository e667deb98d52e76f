"""Upload plumbing: a request-body size limit and spooling uploads to temporary files.

Uploads are never held whole in memory: Starlette's multipart parser spools file parts to a
temporary file past 1 MiB, and we copy that, chunk by chunk, to a named file the corpus readers
can open by path (the suffix is kept, because readers detect the format from it).
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.api.errors import ApiError, error_response
from producer.corpus import JsonProblem, parse_json

CHUNK = 1 << 20
#: Upload formats the API accepts (``txt`` is an alias of the readers' ``text``).
FORMAT_ALIASES = {"jsonl": "jsonl", "ndjson": "jsonl", "text": "text", "txt": "text", "csv": "csv",
                  "json": "json"}


class BodyLimit:
    """ASGI middleware answering 413 once a request body exceeds ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading anything; a chunked
    body is counted as it streams in and refused as soon as it crosses the limit.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > self.limit:
            await error_response("payload_too_large", self._message())(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError("payload_too_large", self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.limit} bytes"


def normalise_format(fmt: str | None) -> str | None:
    """Map a user-given format name to a reader format (``None`` = detect from the file name).

    Raises:
        ApiError: ``invalid_input`` for an unknown format.
    """
    if not fmt:
        return None
    try:
        return FORMAT_ALIASES[fmt.strip().lower()]
    except KeyError:
        raise ApiError("invalid_input", f"unknown format {fmt!r} (choose from jsonl, text, csv, json)") from None


def spool(src: BinaryIO, *, filename: str | None, directory: Path | None = None) -> Path:
    """Copy an uploaded file object to a named temporary file, chunk by chunk.

    Args:
        src: the uploaded file object (positioned anywhere; rewound first).
        filename: the client's file name; only its suffix is used.
        directory: where to create the file (default: the system temp dir).

    Returns:
        The path of the copy; the caller deletes it.
    """
    suffix = Path(filename or "").suffix.lower()
    if not suffix.isascii() or len(suffix) > 10:
        suffix = ""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    src.seek(0)
    with tempfile.NamedTemporaryFile("wb", suffix=suffix, prefix="upload-", dir=directory, delete=False) as dst:
        shutil.copyfileobj(src, dst, CHUNK)
        return Path(dst.name)


def looks_like_json_array(path: Path) -> bool:
    """True when the file's first non-blank character opens a JSON array."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, read as it streams in and refused (413) as soon as it passes ``limit``
    bytes, so an oversized JSON body is never held whole."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError("payload_too_large", _json_limit_message(limit))
    parts: list[bytes] = []
    seen = 0
    async for part in request.stream():
        seen += len(part)
        if seen > limit:
            raise ApiError("payload_too_large", _json_limit_message(limit))
        parts.append(part)
    return b"".join(parts)


def _json_limit_message(limit: int) -> str:
    return (f"a JSON body is limited to {limit:,} bytes (SHITI_MAX_JSON_BYTES): send a larger corpus "
            "as a multipart file upload, which is streamed to disk")


def load_json_documents(raw: bytes | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Parse a JSON array of document objects, or ``{"documents": [...], <options>}``.

    The array is parsed whole (call it in a worker thread, never on the event loop); its size is
    bounded by ``max_json_bytes`` (a body) or the upload limit (a ``.json`` file). Items that are
    not objects stay in the list: they become ``malformed`` documents, like such a JSONL line.

    Returns:
        ``(documents, options)``; options are the other keys of the object form
        (``client_token``, ``name``, ``id_field``, ``text_field``, ``model``, ``priority``,
        ``notify``, ``fold``, ``dict``, ``incremental``), empty for a bare array.

    Raises:
        ApiError: ``invalid_input`` when it is not JSON (deep nesting and huge numbers included),
            not a list of documents, or an option is not a string.
    """
    data = parse_json(raw.read_bytes() if isinstance(raw, Path) else raw)
    if isinstance(data, JsonProblem):
        raise ApiError("invalid_input", f"body is not valid JSON: {data.message}")
    options: dict[str, Any] = {}
    if isinstance(data, dict):
        options = {k: v for k, v in data.items() if k != "documents"}
        data = data.get("documents")
    if not isinstance(data, list):
        raise ApiError("invalid_input", 'expected a JSON list of documents, or {"documents": [...]}')
    for key, value in options.items():
        if key == "priority":
            if value is not None and type(value) is not int:
                raise ApiError("invalid_input", f"priority must be an integer from 1 to 100, not {str(value)[:40]!r}")
        elif key in ("fold", "incremental"):
            if value is not None and not isinstance(value, bool):
                raise ApiError("invalid_input", f"{key} must be true or false, not {str(value)[:40]!r}")
        elif value is not None and not isinstance(value, str):
            raise ApiError("invalid_input", f"option {str(key)[:100]!r} must be a string")
    return data, options


def release_memory() -> None:
    """Hand freed heap back to the operating system after a large parse (glibc keeps it
    otherwise, and a server that parsed one big body would stay that big)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
