"""fetch (network patched), evaluate through the Tagger, and the click group."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from worker.model import fetch as fetch_mod
from worker.model.cli import model as model_cli
from worker.tagger.errors import FetchError


def test_fetch_fails_fast_without_network(monkeypatch, tmp_path) -> None:
    def no_route(endpoint: str, timeout: float) -> None:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(fetch_mod, "_probe", no_route)
    monkeypatch.setattr(fetch_mod, "_download", lambda *a: pytest.fail("must not try to download"))
    start = time.monotonic()
    with pytest.raises(FetchError, match="cannot reach the ModelScope hub"):
        fetch_mod.fetch(out=tmp_path / "m")
    assert time.monotonic() - start < 2


def test_fetch_real_probe_to_unroutable_host_is_bounded(tmp_path) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError):
        fetch_mod.fetch(out=tmp_path / "m", endpoint="https://10.255.255.1:9", timeout=0.5)
    assert time.monotonic() - start < 3


def test_fetch_success_checks_the_files(monkeypatch, tmp_path, tiny) -> None:
    src = tiny("hub")
    monkeypatch.setattr(fetch_mod, "_probe", lambda endpoint, timeout: None)

    def fake_download(model_id: str, out: Path, endpoint: str) -> str:
        shutil.copytree(src, out, dirs_exist_ok=True)
        return str(out)

    monkeypatch.setattr(fetch_mod, "_download", fake_download)
    assert fetch_mod.fetch("damo/x", tmp_path / "ok") == tmp_path / "ok"
    monkeypatch.setattr(fetch_mod, "_download", lambda m, out, e: str(out))  # downloads nothing
    with pytest.raises(FetchError, match="lacks"):
        fetch_mod.fetch("damo/x", tmp_path / "empty")


def test_cli_quantize_then_evaluate_json(tmp_path, tiny) -> None:
    from conftest import RULES, make_rule_model

    src = make_rule_model(tmp_path / "rules", RULES)
    data = tmp_path / "dev.txt"
    rows = []
    for sent, tags in (("我说王小明在北京", "O O B-PER I-PER I-PER O B-LOC I-LOC"), ("张在上海", "B-PER O B-LOC I-LOC")):
        rows += [f"{c}\t{t}" for c, t in zip(sent, tags.split())] + [""]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(model_cli, ["quantize", str(src), "--out", str(tmp_path / "art")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(model_cli, ["evaluate", "--data", str(data), "--model", str(tmp_path / "art"), "--json",
                                    "--threads", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # the rule model finds 王小明 and 北京 only: 2 of 4 gold entities, no false positives
    assert (out["precision"], out["recall"], out["sentences"], out["chars"]) == (1.0, 0.5, 2, 12)
    assert out["per_type"]["PER"]["support"] == 2 and out["chars_per_second"] > 0


def test_cli_errors_are_clear(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(model_cli, ["quantize", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "missing configuration.json" in res.output
    data = tmp_path / "d.txt"
    data.write_text("北\tO\n\n")
    res = runner.invoke(model_cli, ["evaluate", "--data", str(data), "--model", str(tmp_path / "none")])
    assert res.exit_code != 0 and "does not exist" in res.output
