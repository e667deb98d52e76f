"""The CLI takes entity types from the model, not a built-in PER/LOC/ORG list."""

from __future__ import annotations

import json
from collections.abc import Sequence

from click.testing import CliRunner

from producer.cli.demo import RESET, colours, highlight
from producer.cli.main import cli
from storage.core.settings import Settings
from tests.component.test_tasks import submit
from tests.helpers.fake_tagger import FakeEntity
from worker.batch import run_batch


class ProductTagger:
    """Tags every "华为" as PRODUCT: a label no built-in list has."""

    def annotate(self, texts: Sequence[str], **_: object) -> list[list[FakeEntity]]:
        return [[FakeEntity(i, i + 2, "PRODUCT", "华为", 0.9) for i in range(len(t)) if t.startswith("华为", i)]
                for t in texts]


def test_entities_type_filter_takes_any_label_the_model_declared(settings: Settings, monkeypatch) -> None:
    job_id, ids = submit(settings)
    run_batch(settings, job_id=job_id, doc_ids=ids, tagger=ProductTagger(), topup=False)
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    got = CliRunner().invoke(cli, ["entities", job_id, "--type", "product", "--json"])
    assert got.exit_code == 0, got.output
    rows = [json.loads(line) for line in got.output.splitlines()]
    assert [(r["label"], r["text"]) for r in rows] == [("PRODUCT", "华为")]
    got = CliRunner().invoke(cli, ["entities", job_id, "--type", "PER", "--json"])
    assert got.exit_code == 0 and got.output == ""


def test_demo_colours_every_label_of_the_model() -> None:
    palette = colours(["LOC", "ORG", "PER", "PRODUCT"])
    assert len(set(palette.values())) == 4
    text = "华为在北京"
    shown = highlight(text, [{"start": 0, "end": 2, "label": "PRODUCT", "text": "华为"},
                             {"start": 3, "end": 5, "label": "LOC", "text": "北京"}], palette)  # type: ignore[list-item]
    assert shown == f"{palette['PRODUCT']}华为{RESET}在{palette['LOC']}北京{RESET}"


def test_entities_filters_refuse_nul_surrogates_and_overlong_values(settings: Settings, monkeypatch) -> None:
    job_id, _ = submit(settings)
    monkeypatch.setenv("SHITI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHITI_DATABASE_URL", settings.database_url)
    for flag, value in (("--type", "\udcff"), ("--type", "P" * 5000), ("--text", "a\x00b"), ("--doc", "\ud800")):
        got = CliRunner().invoke(cli, ["entities", job_id, flag, value])
        assert got.exit_code != 0 and got.output.startswith("error: ") and flag[2:] in got.output, (flag, got.output)
        assert not isinstance(got.exception, UnicodeError)
