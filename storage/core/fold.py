"""The Traditional -> Simplified character fold applied to a text before the model.

The model was trained on Simplified text; Traditional text (Hong Kong, Taiwan) tags better once
folded. The fold maps one code point to one (``data/t2s_fold.tsv``, from OpenCC's table, see
``scripts/build_fold_table.py``), so every offset in the folded text is an offset in the original:
the model reads the folded text and each entity keeps the original's characters.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "t2s_fold.tsv"
NAME = "t2s"


@lru_cache(maxsize=1)
def _table() -> tuple[dict[int, int], str]:
    data = TABLE.read_bytes()
    mapping: dict[int, int] = {}
    for line in data.decode("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        src, dst = line.split("\t")
        if len(src) != 1 or len(dst) != 1:  # the one property offsets rely on
            raise ValueError(f"{TABLE}: {line!r} does not map one character to one")
        mapping[ord(src)] = ord(dst)
    return mapping, hashlib.sha256(data).hexdigest()


def fold_id() -> str:
    """What a job records as its fold: the table's name and the start of its content hash."""
    return f"{NAME}-{_table()[1][:12]}"


def fold(text: str) -> str:
    """``text`` with every Traditional character of the table replaced by its Simplified one; same
    length, same code point at every position the table does not name."""
    return text.translate(_table()[0])
