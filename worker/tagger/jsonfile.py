"""Reading a model directory's JSON files, with the file named in every error (no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker.tagger.errors import ModelLoadError


def read_json(path: Path, *, kind: type = dict) -> Any:
    """The JSON value in ``path``, which must be a ``kind`` (an object by default).

    Raises:
        ModelLoadError: the file is missing, unreadable, not JSON, or another kind of value.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: cannot read JSON ({exc})") from exc
    if not isinstance(data, kind):
        raise ModelLoadError(f"{path}: expected a JSON {'object' if kind is dict else kind.__name__}")
    return data
