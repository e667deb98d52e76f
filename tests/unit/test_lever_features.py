"""The feature extractors of the model levers (``bench/lac_lever.py``, ``bench/trained_levers.py``):
one row per character, aligned with Python string offsets (the service's offsets) on emoji,
full-width letters, ``\\r\\n`` and mixed Latin text, and the same output every time.

LAC runs here on random weights of LAC 2.1.2's shapes (the real ones live outside the repo):
alignment, and a text's path not depending on its batch-mates (one text alone vs padded batches
of other sizes and orders), do not depend on the values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from lac_lever import Lac  # noqa: E402
from trained_levers import N_FEATS, lac_features, lexicon_features  # noqa: E402

TEXTS = [
    "张三在北京大学读书。",
    "😀张三去了北京\r\n李四在上海",
    "ＡＢＣ公司的张三，ABC Corp 的 John 在北京",
    "北京",
    "北",
    "",
    "a" * 130,
]
LEXICON = {"张三": "PER", "李四": "PER", "北京": "LOC", "上海": "LOC", "北京大学": "ORG", "ＡＢＣ公司": "ORG"}


def _expected_lexicon(text: str) -> np.ndarray:
    """Brute force: every dictionary occurrence marks B / M / E of its type."""
    out = np.zeros((len(text), 9), dtype=np.float32)
    types = ["PER", "LOC", "ORG"]
    for word, typ in LEXICON.items():
        start = text.find(word)
        while start >= 0:
            t = types.index(typ)
            out[start, 3 * t] = 1
            out[start + 1:start + len(word) - 1, 3 * t + 1] = 1
            out[start + len(word) - 1, 3 * t + 2] = 1
            start = text.find(word, start + 1)
    return out


@pytest.mark.parametrize("text", TEXTS)
def test_lexicon_features_align_with_characters(text: str) -> None:
    feats = lexicon_features(text, LEXICON)
    assert feats.shape == (len(text), N_FEATS["lexicon"])
    np.testing.assert_array_equal(feats, _expected_lexicon(text))
    np.testing.assert_array_equal(feats, lexicon_features(text, LEXICON))


def test_lexicon_features_mark_the_word_after_an_emoji_and_a_crlf() -> None:
    text = "😀张三去了北京\r\n李四"
    feats = lexicon_features(text, LEXICON)
    assert feats[text.index("张"), 0] == 1 and feats[text.index("三"), 2] == 1  # PER begin / end
    assert feats[text.index("李"), 0] == 1
    assert not feats[text.index("\r")].any() and not feats[0].any()


def test_lac_features_map_entity_tags_and_word_starts() -> None:
    # 16..21 = PER/LOC/ORG B/I; even tags start a word; 48 = "O".
    tags = [16, 17, 20, 21, 21, 14, 15, 48, 39]
    feats = lac_features(tags)
    assert feats.shape == (len(tags), N_FEATS["lac"])
    assert [int(np.argmax(f[:6])) if f[:6].any() else None for f in feats] == [0, 1, 4, 5, 5, None, None, None, None]
    assert feats[:, 6].tolist() == [1, 0, 1, 0, 0, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def random_lac(tmp_path_factory: pytest.TempPathFactory) -> Lac:
    from safetensors.numpy import save_file

    where = tmp_path_factory.mktemp("lac")
    rng = np.random.default_rng(0)
    chars = sorted({c for t in TEXTS for c in t} - {"\r", "\n"})
    shapes = {"word_emb": (len(chars) + 1, 128), "crfw": (51, 49), "fc_4.w_0": (256, 49), "fc_4.b_0": (49,)}
    for k in range(4):
        shapes |= {f"fc_{k}.w_0": (128 if k < 2 else 256, 384), f"fc_{k}.b_0": (384,),
                   f"gru_{k}.w_0": (128, 384), f"gru_{k}.b_0": (1, 384)}
    # Small weights keep the GRUs contracting: with large ones they are chaotic and the batched
    # path's other float rounding alone would change the paths.
    save_file({k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in shapes.items()}, str(where / "model.safetensors"))
    (where / "word.dic").write_text("".join(f"{i}\t{c}\n" for i, c in enumerate(chars)) + f"{len(chars)}\tOOV\n",
                                    encoding="utf-8")
    (where / "q2b.dic").write_text("Ａ\tA\nＢ\tB\nＣ\tC\n", encoding="utf-8")
    return Lac(where)


def test_lac_batched_path_equals_one_text_at_a_time(random_lac: Lac) -> None:
    one = [random_lac.tags(t) if t else [] for t in TEXTS]
    assert [len(p) for p in one] == [len(t) for t in TEXTS]
    assert random_lac.tags_many(TEXTS) == one
    assert random_lac.tags_many(TEXTS, batch=2) == one  # other batch-mates, same paths
    assert random_lac.tags_many(list(reversed(TEXTS))) == list(reversed(one))


def test_lac_features_are_one_row_per_character(random_lac: Lac) -> None:
    for text, tags in zip(TEXTS, random_lac.tags_many(TEXTS)):
        assert lac_features(tags).shape == (len(text), N_FEATS["lac"])
