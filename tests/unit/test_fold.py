"""The Traditional -> Simplified fold: one code point for one, so offsets never move."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.core.fold import TABLE, _table, fold, fold_id

REPO = Path(__file__).resolve().parents[2]
TRAD = [chr(c) for c in sorted(_table()[0])]


def test_known_characters_fold_and_others_stay() -> None:
    assert fold("臺灣國語說話，張偉在北京大學。") == "台湾国语说话，张伟在北京大学。"
    # Characters Simplified news uses as they are (乾隆, 哪吒) are not folded.
    assert fold("乾隆和哪吒") == "乾隆和哪吒"
    assert fold_id().startswith("t2s-") and len(fold_id()) == 16


@given(st.lists(st.one_of(st.sampled_from(TRAD), st.sampled_from(["😀", "\r\n", "\r", "ＡＢ１", " ", "\u3000",
                                                                  "北京", "a", "\U00020000"]),
                          st.characters(codec="utf-8")), max_size=60))
def test_fold_keeps_length_and_every_position_outside_the_table(parts: list[str]) -> None:
    text = "".join(parts)
    out = fold(text)
    assert len(out) == len(text)
    table = _table()[0]
    for a, b in zip(text, out):
        assert b == chr(table[ord(a)]) if ord(a) in table else b == a
    # Offsets carry over: any span of the folded text is the same span of the original.
    assert all(fold(text[i:j]) == out[i:j] for i in range(0, len(text), 7) for j in range(i, len(text) + 1, 5))


def test_table_maps_one_character_to_one_and_matches_its_source() -> None:
    pytest.importorskip("opencc", reason="the table's source (opencc, a test extra) is not installed")
    lines = [line for line in TABLE.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert len(lines) > 4000 and all(len(a) == 1 and len(b) == 1 for a, b in (x.split("\t") for x in lines))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "build_fold_table.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
