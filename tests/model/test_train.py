"""Training round trip: a few steps on a tiny BIO file lower the loss, and the result saves,
quantizes, loads and evaluates through the production code."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from worker.model.artifact import quantize
from worker.model.bio import read_bio
from worker.model.checkpoint import read_tokenizer
from worker.tagger.encoding import CharEncoder
from worker.model.evaluate import evaluate
from worker.tagger.loading import load_tagger
from worker.model.network import BertCrf
from worker.model.train import LABELS, TrainConfig, collate, init_model, make_examples, train

PEOPLE = ["李明", "王芳", "张伟", "刘洋"]
PLACES = ["北京", "上海", "南京", "广州"]
ORGS = ["清华大学", "新华社", "人民银行"]


def _write_bio(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        parts = [(rng.choice(PEOPLE), "PER"), ("在", None), (rng.choice(PLACES), "LOC"), ("的", None),
                 (rng.choice(ORGS), "ORG"), ("工作。", None)]
        for text, typ in parts:
            for i, ch in enumerate(text):
                lines.append(f"{ch}\t{'O' if typ is None else ('B-' if i == 0 else 'I-') + typ}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _init_dir(path: Path) -> Path:
    chars = sorted(set("".join(PEOPLE + PLACES + ORGS) + "在的工作。"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(path)
    return path


def _batch(data: Path, init: Path) -> dict[str, torch.Tensor]:
    """All of a BIO file as one training batch, encoded with ``init``'s vocabulary."""
    tok, _ = read_tokenizer(init)
    return collate(make_examples(list(read_bio(data)), CharEncoder(tok), {l: i for i, l in enumerate(LABELS)}, 62))


def _eval_emissions(model: BertCrf, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.emissions(batch["input_ids"], batch["attention_mask"], batch["word_index"])


def _mean_loss(model: BertCrf, data: Path, init: Path) -> float:
    batch = _batch(data, init)
    with torch.no_grad():
        return float(model.loss(_eval_emissions(model, batch), batch["tags"], batch["word_mask"]))


def test_few_steps_lower_loss_and_round_trip(tmp_path: Path) -> None:
    # Given a tiny BERT init and a tiny BIO corpus
    init = _init_dir(tmp_path / "init")
    data, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    _write_bio(data, 60, seed=1)
    _write_bio(dev, 10, seed=2)
    # the training file came from corrections: its lineage sidecar (shiti data import --out) goes along
    (tmp_path / "train.txt.lineage.json").write_text(json.dumps({"format": "shiti-corrections/1", "job": "j1",
                                                                 "gold_job": "g1", "documents": 60}))
    cfg = TrainConfig(init=str(init), train=[str(data)], dev=str(dev), out=str(tmp_path / "run"), epochs=40,
                      lr=2e-3, head_lr=2e-2, warmup=5, batch_tokens=512, max_words=62, eval_every=20,
                      ckpt_every=10, threads=1, bf16=False)
    torch.manual_seed(cfg.seed)
    before = _mean_loss(init_model(str(init), len(LABELS), None), dev, init)

    # When it trains for 30 steps in two calls (the second resumes from the saved state)
    first = train(cfg, max_steps=15)
    assert first["step"] == 15
    second = train(cfg, resume=True, max_steps=15)
    assert second["step"] == 30

    # Then the loss went down, and the best checkpoint is a RaNER dir that quantizes and evaluates
    best = tmp_path / "run" / "best"
    state = torch.load(best / "pytorch_model.bin", weights_only=True)
    trained = BertCrf(BertConfig.from_pretrained(best), len(LABELS))
    trained.load_state_dict(state)
    after = _mean_loss(trained, dev, init)
    assert after < 0.5 * before, (before, after)
    # A later run can start from this checkpoint, head included (e.g. a second stage with more data)
    resumed = init_model(str(best), len(LABELS), None)
    assert abs(_mean_loss(resumed, dev, init) - after) < 1e-4
    log = [json.loads(line) for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == [20]
    art = quantize(tmp_path / "run", tmp_path / "art")  # a training run: its best/ checkpoint, to ONNX
    # the artifact names what it learned from: the files by hash, the jobs and correction sets
    trained_on = json.loads((art / "manifest.json").read_text())["trained_on"]
    assert trained_on["train"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (trained_on["train"][0]["corrections"]["job"], trained_on["train"][0]["corrections"]["gold_job"]) == (
        "j1", "g1")
    assert trained_on["init"]["path"] == str(init) and trained_on["dev"][0]["file"] == str(dev)
    result = evaluate(load_tagger(art), dev)
    assert result["sentences"] == 10 and 0.0 <= result["f1"] <= 1.0
    assert set(result["per_type"]) <= {"PER", "LOC", "ORG"}
    assert result["f1"] > 0.5  # 30 steps on a corpus this regular learn most of it


def _emission_gap(student: BertCrf, teacher: BertCrf, data: Path, init: Path, kind: str) -> float:
    from worker.model.train import distill_loss

    batch = _batch(data, init)
    return float(distill_loss(teacher, _eval_emissions(student, batch), batch, kind=kind))


@pytest.mark.parametrize("kind", ["mse", "kl"])
def test_distillation_pulls_the_student_towards_the_teacher(tmp_path: Path, kind: str) -> None:
    # Given a teacher trained on a tiny corpus
    init = _init_dir(tmp_path / "init")
    data, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    _write_bio(data, 60, seed=1)
    _write_bio(dev, 10, seed=2)
    common = {"train": [str(data)], "dev": str(dev), "lr": 2e-3, "head_lr": 2e-2, "warmup": 5, "batch_tokens": 512,
              "max_words": 62, "eval_every": 1000, "ckpt_every": 1000, "threads": 1, "bf16": False}
    train(TrainConfig(init=str(init), out=str(tmp_path / "teacher"), epochs=40, **common), max_steps=25)
    teacher_dir = tmp_path / "teacher" / "best"
    teacher = init_model(str(teacher_dir), len(LABELS), None)

    # When one-layer students start from it, with and without the teacher's emissions as targets
    def student(name: str, **extra) -> BertCrf:
        cfg = TrainConfig(init=str(teacher_dir), out=str(tmp_path / name), layers=1, epochs=40, **common, **extra)
        train(cfg, max_steps=12)
        return init_model(str(tmp_path / name / "best"), len(LABELS), None)

    plain = _emission_gap(student("plain"), teacher, dev, init, kind)
    distilled = _emission_gap(student("distilled", teacher=str(teacher_dir), distill_weight=5.0, distill_loss=kind),
                              teacher, dev, init, kind)

    # Then the distilled student's emissions stay much closer to the teacher's (measured, mse:
    # 0.31 vs 3.7; the plain student's drift apart as the CRF loss alone sharpens them)
    assert distilled < 0.25 * plain, (plain, distilled)
    assert json.loads((tmp_path / "distilled" / "config.json").read_text())["teacher"] == str(teacher_dir)


def test_distill_loss_is_zero_for_the_teacher_itself_and_checks_its_kind(tmp_path: Path) -> None:
    from worker.model.train import distill_loss

    init = _init_dir(tmp_path / "init")
    data = tmp_path / "d.txt"
    _write_bio(data, 8, seed=3)
    batch = _batch(data, init)
    teacher = init_model(str(init), len(LABELS), None)
    own = _eval_emissions(teacher, batch)
    with torch.no_grad():
        for kind in ("mse", "kl"):
            assert abs(float(distill_loss(teacher, own, batch, kind=kind))) < 1e-6
            assert float(distill_loss(teacher, own + torch.randn_like(own), batch, kind=kind)) > 1e-3
    with pytest.raises(ValueError, match="distill loss must be one of"):
        distill_loss(teacher, own, batch, kind="l1")


def test_teacher_must_be_a_raner_dir(tmp_path: Path) -> None:
    init = _init_dir(tmp_path / "init")
    data = tmp_path / "train.txt"
    _write_bio(data, 5, seed=1)
    cfg = TrainConfig(init=str(init), train=[str(data)], out=str(tmp_path / "run"), teacher=str(init), threads=1,
                      bf16=False, dev_size=1)
    with pytest.raises(ValueError, match="teacher .* is not a RaNER directory"):
        train(cfg, max_steps=1)


def test_teacher_with_other_labels_or_vocab_is_refused_before_training(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from worker.model.cli import model as model_cli

    init = _init_dir(tmp_path / "init")
    data, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    _write_bio(data, 20, seed=1)
    _write_bio(dev, 5, seed=2)
    train(TrainConfig(init=str(init), train=[str(data)], dev=str(dev), out=str(tmp_path / "t"), threads=1, bf16=False,
                      eval_every=1000, ckpt_every=1000), max_steps=2)
    teacher = tmp_path / "t" / "best"
    # A teacher trained on other labels (BIOES here) is named with both label lists
    bioes = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in "BIES"]
    cfg = TrainConfig(init=str(init), train=[str(data)], dev=str(dev), out=str(tmp_path / "s1"), teacher=str(teacher),
                      labels=bioes, threads=1, bf16=False)
    with pytest.raises(ValueError, match="has labels .* the student trains"):
        train(cfg, max_steps=1)
    # A student whose --init has another vocabulary is refused, through the CLI as a one-line error
    other = tmp_path / "other"
    other.mkdir()
    for f in init.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "vocab.txt").write_text((init / "vocab.txt").read_text(encoding="utf-8") + "新\n", encoding="utf-8")
    got = CliRunner().invoke(model_cli, ["train", "--init", str(other), "--train", str(data), "--dev", str(dev),
                                         "--out", str(tmp_path / "s2"), "--teacher", str(teacher), "--threads", "1"])
    assert got.exit_code == 1 and "another vocab.txt" in got.output, got.output
    assert not (tmp_path / "s1" / "state.pt").exists() and not (tmp_path / "s2" / "state.pt").exists()


def test_weighted_sampling_follows_the_weights() -> None:
    from worker.model.train import epoch_order

    # Given three files of 100, 40 and 1,000 examples at weights 1, 2.5 and 0.3
    order = epoch_order([100, 40, 1000], [1.0, 2.5, 0.3], random.Random(13))
    # Then one epoch holds each file as often as its weight says (fixed seed, counted)
    counts = [sum(lo <= i < hi for i in order) for lo, hi in ((0, 100), (100, 140), (140, 1140))]
    assert counts == [100, 100, 300]
    # Whole passes see every example; a fractional share draws distinct ones
    assert sorted(i for i in order if i < 100) == list(range(100))
    big = [i for i in order if i >= 140]
    assert len(set(big)) == 300
    assert epoch_order([100, 40, 1000], [1.0, 2.5, 0.3], random.Random(13)) == order


@pytest.mark.parametrize("spec,message", [("f.txt:0", "positive"), ("f.txt:-1", "positive"),
                                          ("f.txt:abc", "not a number"), ("f.txt:inf", "positive")])
def test_bad_weights_are_refused(spec: str, message: str) -> None:
    from worker.model.train import parse_weighted

    with pytest.raises(ValueError, match=message):
        parse_weighted(spec)
    assert parse_weighted("a:b/f.txt:2.5") == ("a:b/f.txt", 2.5) and parse_weighted("f.txt") == ("f.txt", 1.0)


def test_multi_file_training_selects_on_the_macro_average(tmp_path: Path) -> None:
    # Given two train files with weights and two dev files
    init = _init_dir(tmp_path / "init")
    a, b, dev_a, dev_b = (tmp_path / f"{n}.txt" for n in ("a", "b", "dev_a", "dev_b"))
    _write_bio(a, 40, seed=1)
    _write_bio(b, 20, seed=3)
    _write_bio(dev_a, 8, seed=2)
    _write_bio(dev_b, 8, seed=4)
    cfg = TrainConfig(init=str(init), train=[str(a), str(b)], weights=[1.0, 2.0], dev=[str(dev_a), str(dev_b)],
                      out=str(tmp_path / "run"), epochs=40, lr=2e-3, head_lr=2e-2, warmup=5, batch_tokens=512,
                      max_words=62, eval_every=10, ckpt_every=10, threads=1, bf16=False)
    # When it trains (and resumes once)
    train(cfg, max_steps=10)
    train(cfg, resume=True, max_steps=10)
    # Then every evaluation logged F1 per dev file, and the selection rule; dev_f1 is their mean
    log = [json.loads(line) for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20]
    for row in log:
        assert set(row["dev_f1_per_file"]) == {str(dev_a), str(dev_b)}
        assert abs(row["dev_f1"] - sum(row["dev_f1_per_file"].values()) / 2) < 1e-9
        assert row["selection"].startswith("macro-average")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["selection"].startswith("macro-average")


def test_training_inputs_are_checked_before_training(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from worker.model.cli import model

    init = _init_dir(tmp_path / "init")
    good, empty_dev, bad = tmp_path / "good.txt", tmp_path / "empty.txt", tmp_path / "bad.txt"
    _write_bio(good, 10, seed=1)
    empty_dev.write_text("这\tO\n是\tO\n\n", encoding="utf-8")
    bad.write_text("李\tB-PER\n明 B-PER\n\n", encoding="utf-8")
    base = ["train", "--init", str(init), "--out", str(tmp_path / "run")]
    cases = {
        (f"{good}:0", None): "must be a positive number",
        (f"{tmp_path}/missing.txt:2", None): "is not a file",
        (str(good), str(empty_dev)): f"dev file {empty_dev} has no entities",
        (str(bad), None): f"{bad}:2: expected 'CHAR<TAB>TAG'",
    }
    for (train_spec, dev), message in cases.items():
        args = [*base, "--train", train_spec] + (["--dev", dev] if dev else [])
        got = CliRunner().invoke(model, args)
        assert got.exit_code != 0 and message in got.output, (args, got.output)
    assert not (tmp_path / "run" / "state.pt").exists()


def _tiny_run(tmp_path: Path, name: str) -> TrainConfig:
    init = tmp_path / "init"
    if not init.exists():
        _init_dir(init)
        _write_bio(tmp_path / "train.txt", 80, seed=1)
        _write_bio(tmp_path / "dev.txt", 10, seed=2)
    return TrainConfig(init=str(init), train=[str(tmp_path / "train.txt")], dev=str(tmp_path / "dev.txt"),
                       out=str(tmp_path / name), epochs=12, lr=2e-3, head_lr=2e-2, warmup=5, batch_tokens=256,
                       max_words=62, eval_every=7, ckpt_every=3, threads=1, bf16=False)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "state.pt", weights_only=False)["model"]


def test_a_run_killed_at_any_moment_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # Given the same tiny run uninterrupted, and once as a process killed (SIGKILL) mid-run
    whole = _tiny_run(tmp_path, "whole")
    done = train(whole)
    cut = _tiny_run(tmp_path, "cut")
    cmd = [sys.executable, "-m", "producer.cli.main", "model", "train", "--init", cut.init, "--train", cut.train[0],
           "--dev", str(cut.dev), "--out", cut.out, "--epochs", str(cut.epochs), "--lr", str(cut.lr),
           "--head-lr", str(cut.head_lr), "--warmup", str(cut.warmup), "--batch-tokens", str(cut.batch_tokens),
           "--eval-every", str(cut.eval_every), "--ckpt-every", str(cut.ckpt_every), "--threads", "1"]
    cmd += ["--no-bf16", "--max-words", str(cut.max_words)]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])
    state = Path(cut.out) / "state.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and torch.load(state, weights_only=False)["step"] >= done["step"] // 3:
            break
        time.sleep(0.05)
    time.sleep(0.137)  # somewhere between two checkpoints
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(state, weights_only=False)["step"]
    assert 0 < killed_at < done["step"]

    # When it is resumed (as often as it takes) to the end
    again = train(cut, resume=True)

    # Then it ends at the same step with exactly the same weights, best score and best checkpoint
    assert again["step"] == done["step"] and again["best_dev_f1"] == done["best_dev_f1"]
    a, b = _weights(Path(whole.out)), _weights(Path(cut.out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    best_a = torch.load(Path(whole.out) / "best" / "pytorch_model.bin", weights_only=True)
    best_b = torch.load(Path(cut.out) / "best" / "pytorch_model.bin", weights_only=True)
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_a_packed_run_fits_the_file_limits_and_resumes(tmp_path: Path) -> None:
    from worker.model.runpack import MIB, pack, unpack

    whole = _tiny_run(tmp_path, "whole")
    done = train(whole)
    part = _tiny_run(tmp_path, "part")
    train(part, max_steps=done["step"] // 2)
    # Packed in float32 with the optimizer, unpacked elsewhere, resumed: bit for bit
    files = pack(part.out, tmp_path / "packed", dtype="float32", optimizer=True, max_file_bytes=1 * MIB)
    assert len(files) <= 8 and all(f.stat().st_size <= 1 * MIB for f in files)
    moved = _tiny_run(tmp_path, "moved")
    unpack(tmp_path / "packed", moved.out)
    assert train(moved, resume=True)["step"] == done["step"]
    a, b = _weights(Path(whole.out)), _weights(Path(moved.out))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Packed small (bfloat16, no optimizer): it resumes from rounded weights with fresh moments
    small = pack(part.out, tmp_path / "small", max_file_bytes=1 * MIB)
    assert sum(f.stat().st_size for f in small) < sum(f.stat().st_size for f in files) / 2
    rough = _tiny_run(tmp_path, "rough")
    unpack(tmp_path / "small", rough.out)
    state = torch.load(Path(rough.out) / "state.pt", weights_only=False)
    assert state["optimizer"] is None and state["step"] == done["step"] // 2
    assert train(rough, resume=True)["step"] == done["step"]
    # A state that cannot fit says what would
    with pytest.raises(ValueError, match="without --optimizer|over the"):
        pack(part.out, tmp_path / "tight", dtype="float32", optimizer=True, max_files=2, max_file_bytes=64 * 1024)


def test_the_accelerated_training_script_runs_tiny_on_the_cpu_and_packs_the_run(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from worker.model.runpack import MIB

    # Given a data folder laid out like ../shared/data (synthetic sentences) and a tiny encoder
    data = tmp_path / "data"
    for rel, n in (("msra/train.txt", 2100), ("peoples_daily/train.txt", 60), ("peoples_daily/dev.txt", 20),
                   ("peoples_daily/test.txt", 20), ("weibo/train.txt", 60), ("weibo/dev.txt", 20),
                   ("resume/train.txt", 60), ("resume/dev.txt", 20), ("cluener/train.txt", 1100)):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_bio(data / rel, n, seed=len(rel) + n)
    init = _init_dir(tmp_path / "init")
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    # When the GPU script runs in its --tiny mode (the CPU, a few steps)
    done = subprocess.run(["bash", "scripts/train_accelerated.sh", str(out), "--tiny", "--init", str(init),
                           "--data", str(data)], cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    # Then it scored the dev splits and packed the run within the returned-files limits
    dev = json.loads((out / "dev.json").read_text())
    assert len(dev["files"]) == 4 and 0 <= dev["macro_f1"] <= 1
    packed = sorted((out / "packed").iterdir())
    assert 2 <= len(packed) <= 8 and all(f.stat().st_size <= 16 * MIB for f in packed)
    # And the packed run resumes elsewhere (a second stretch starting from it)
    again = subprocess.run(["bash", "scripts/train_accelerated.sh", str(tmp_path / "out2"), "--tiny", "--init",
                            str(init), "--data", str(data), "--resume", str(out / "packed")], cwd=repo,
                           capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHON": sys.executable})
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "out2" / "train.json").read_text())["step"] >= json.loads(
        (out / "train.json").read_text())["step"]
