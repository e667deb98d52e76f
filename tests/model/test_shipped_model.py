"""The shipped default model tags sentences written for this test as expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.settings import DEFAULT_MODEL
from worker.model.tagger import load_tagger

CASES = {
    "李明在北京的清华大学工作。": {("李明", "PER"), ("北京", "LOC"), ("清华大学", "ORG")},
    "王小红是复旦大学的教授，她出生在江苏省南京市。": {
        ("王小红", "PER"), ("复旦大学", "ORG"), ("江苏省", "LOC"), ("南京市", "LOC")},
    "中国人民银行决定下调存款准备金率。": {("中国人民银行", "ORG")},
    "记者张伟从广州报道：联合国秘书长安南今天抵达日本东京。": {
        ("张伟", "PER"), ("广州", "LOC"), ("联合国", "ORG"), ("安南", "PER"), ("日本", "LOC"), ("东京", "LOC")},
}


@pytest.fixture(scope="module")
def tagger():
    return load_tagger(DEFAULT_MODEL)


def test_shipped_artifact_is_complete() -> None:
    manifest = json.loads((Path(DEFAULT_MODEL) / "manifest.json").read_text())
    assert manifest["mode"] == "char" and manifest["num_labels"] == 7


@pytest.mark.parametrize("text", list(CASES))
def test_shipped_model_finds_expected_entities(tagger, text: str) -> None:
    found = tagger.annotate([text])[0]
    assert {(e.text, e.label) for e in found} == CASES[text]
    assert all(text[e.start:e.end] == e.text for e in found)
