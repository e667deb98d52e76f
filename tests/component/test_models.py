"""Models by name: the models directory, content hashes, broken entries, unknown names, and the
``shiti model list`` command on good, empty, missing and broken directories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from producer.service import job_options, submit_corpus
from storage.sql import queries
from storage.sql.db import get_database
from storage.core.errors import PermanentError
from storage.catalog import UnknownModel, content_hash, list_models, resolve
from storage.core.settings import DEFAULT_MODEL, REPO_ROOT, Settings
from tests.helpers.model_variants import copy_shipped, without_org


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    copy_shipped(root / "zh")
    without_org(root / "zh-no-org")
    broken = copy_shipped(root / "zh-corrupt")
    with (broken / "crf.json").open("a") as fh:
        fh.write(" ")  # a byte more: its sha256 no longer matches the manifest
    (root / "notes").mkdir()  # not a model at all
    return root


def test_every_entry_is_listed_with_its_hash_labels_size_and_card_and_broken_ones_say_why(models_dir: Path) -> None:
    found = {m.name: m for m in list_models(Settings(models_dir=models_dir))}
    assert sorted(found) == ["notes", "zh", "zh-corrupt", "zh-no-org"]
    zh, no_org = found["zh"], found["zh-no-org"]
    assert zh.ok and zh.labels == ("LOC", "ORG", "PER") and zh.size_bytes > 10 * 2**20
    assert zh.card.startswith("shiti-zh-small")
    assert zh.content_hash == content_hash(Path(DEFAULT_MODEL))  # a copy is the same model
    assert no_org.ok and no_org.content_hash != zh.content_hash  # another crf.json, another model
    assert not found["zh-corrupt"].ok and "crf.json does not match" in found["zh-corrupt"].error
    assert not found["notes"].ok and "neither a shiti artifact" in found["notes"].error


def test_a_raner_directory_is_hashed_by_every_file_and_listed_as_not_servable(tmp_path: Path) -> None:
    d = tmp_path / "raner"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"id2label": {"0": "O", "1": "B-PER", "2": "I-PER"}}))
    (d / "pytorch_model.bin").write_bytes(b"weights")
    first = content_hash(d)
    (d / "pytorch_model.bin").write_bytes(b"weight2")
    assert content_hash(d) != first
    # Listed, and refused for serving with the command that converts it
    info = list_models(Settings(models_dir=tmp_path))[0]
    assert not info.ok and "a RaNER directory, not servable" in info.error
    assert f"quantize it first: shiti model quantize {d} --out" in info.error
    with pytest.raises(PermanentError, match="cannot be served: a RaNER directory, not servable"):
        resolve(Settings(models_dir=tmp_path), "raner")


def test_resolve_finds_names_paths_and_refuses_unknown_or_broken_ones(models_dir: Path) -> None:
    settings = Settings(models_dir=models_dir, model="zh")
    assert resolve(settings).path == str(models_dir / "zh")
    assert resolve(settings, "zh-no-org").name == "zh-no-org"
    with pytest.raises(UnknownModel, match=r"unknown model 'nope'; known: zh, zh-no-org$"):
        resolve(settings, "nope")
    with pytest.raises(PermanentError, match="zh-corrupt.*cannot be served: crf.json does not match"):
        resolve(settings, "zh-corrupt")
    # A path as the default: its name is the directory's
    by_path = Settings(models_dir=models_dir, model=str(models_dir / "zh-no-org"))
    assert by_path.model_name == "zh-no-org" and resolve(by_path).content_hash == resolve(settings, "zh-no-org").content_hash
    # The shipped default by name
    assert resolve(Settings()).path == str(REPO_ROOT / "models" / "shiti-zh-small")


def test_an_unknown_model_at_submit_stores_nothing_and_lists_the_known_ones(models_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=models_dir, model="zh")
    with pytest.raises(UnknownModel, match="known: zh, zh-no-org"):
        submit_corpus(settings, [{"id": "1", "text": "张伟在北京。"}], options=job_options(settings, model="zh2"))
    with pytest.raises(PermanentError, match="priority must be an integer from 1 to 100"):
        job_options(settings, priority=0)
    assert queries.list_jobs(get_database(settings))[0] == []
    job = submit_corpus(settings, [{"id": "1", "text": "张伟在北京。"}], options=job_options(settings, model="zh-no-org"))
    row = queries.get_job(get_database(settings), job.job_id)
    assert (row["model"], row["model_hash"]) == ("zh-no-org", resolve(settings, "zh-no-org").content_hash)


def _model_list(*args: str, models_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "producer.cli.main", "model", "list", *args],
                          env={"PATH": "/usr/bin:/bin", "SHITI_MODELS_DIR": str(models_dir),
                               "SHITI_REDIS_URL": "redis://127.0.0.1:9/0", "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def test_shiti_model_list_on_good_empty_missing_and_broken_directories(models_dir: Path, tmp_path: Path) -> None:
    good = _model_list(models_dir=models_dir)
    assert good.returncode == 0, good.stderr
    lines = {line.split()[0]: line for line in good.stdout.splitlines()}
    assert "LOC,ORG,PER" in lines["zh"] and "sha256 " + resolve(Settings(models_dir=models_dir), "zh").content_hash[:16] in lines["zh"]
    assert "NOT SERVABLE: crf.json does not match" in lines["zh-corrupt"]
    as_json = json.loads(_model_list("--json", models_dir=models_dir).stdout)
    assert {m["name"]: m["ok"] for m in as_json} == {"notes": False, "shiti-zh-small": False, "zh": True,
                                                     "zh-corrupt": False, "zh-no-org": True}
    empty = tmp_path / "empty"
    empty.mkdir()
    got = _model_list(models_dir=empty)
    assert got.returncode == 1 and f"no models in {empty}" in got.stderr
    got = _model_list(models_dir=tmp_path / "missing")
    assert got.returncode == 1 and f"models directory {tmp_path / 'missing'} does not exist" in got.stderr
    shutil.rmtree(models_dir / "zh")
    assert "zh " not in _model_list(models_dir=models_dir).stdout


def test_a_model_an_earlier_job_recorded_is_accepted_while_no_worker_announces_it(tmp_path: Path) -> None:
    from storage.sql import repo

    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path, model="zh")  # no model files here
    db = get_database(settings)
    with pytest.raises(UnknownModel):
        job_options(settings, model="pool-b")
    repo.create_job(db, model="pool-b", model_hash="f" * 64)  # its pool served it before it restarted
    assert (job_options(settings, model="pool-b").model_hash) == "f" * 64


def test_webhook_urls_in_status_show_scheme_and_host_only() -> None:
    from storage.webhook.http import redact_url

    assert redact_url("https://hooks.example.com/services/T000/B000/XXXX?token=1") == "https://hooks.example.com/…"
    assert redact_url("http://10.0.0.5:8080/") == "http://10.0.0.5:8080/"
