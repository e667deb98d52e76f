"""Fine-tuning a BERT-CRF on BIO files, with checkpoints and resume.

Saves the best dev checkpoint as a RaNER directory (``OUT/best``) that the
loader, ``shiti model quantize`` and ``shiti model evaluate`` read directly, and a
training state (``OUT/state.pt``: weights, optimizer, schedule, RNG, position)
every ``ckpt_every`` steps so a run can be continued with ``resume=True``. The state is
written to a temporary file and renamed, so a run killed at any moment resumes from its last
checkpoint and, on the same machine and thread count, ends bit for bit where an uninterrupted
run ends (``tests/model/test_train.py``). ``worker.model.runpack`` packs it into small files.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm import tqdm
from transformers import BertConfig

from worker.model.bio import Sentence, read_bio
from worker.model.checkpoint import read_labels, read_tokenizer
from worker.model.from_onnx import INIT_DIR, resolve_init
from worker.tagger.encoding import CharEncoder
from worker.tagger.onnx_model import is_onnx_artifact
from worker.model.network import BertCrf
from storage.core.lineage import sidecar
from worker.model.raner_dir import write_raner_dir
from worker.model.scoring import bio_spans, score
from worker.tagger.spans import tags_to_spans

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@dataclass
class TrainConfig:
    """Every knob of a training run; stored in the state file for resume."""

    init: str
    train: list[str]
    out: str
    # One or more dev files; the best checkpoint is the one with the highest macro-average F1
    # over them (SELECTION). A single str (state files of older runs) means one file.
    dev: list[str] | str | None = None
    # Sampling weight per train file (same order); None: 1 each. See :func:`epoch_order`.
    weights: list[float] | None = None
    dev_size: int = 2000
    layers: int | None = None
    epochs: float = 3.0
    lr: float = 2e-4
    head_lr: float = 2e-3
    warmup: int = 300
    batch_tokens: int = 2048
    max_words: int = 126
    eval_every: int = 500
    ckpt_every: int = 200
    seed: int = 13
    threads: int = 2
    bf16: bool | None = None  # None = use it when the CPU supports bf16
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    # Distillation: a trained BERT-CRF (RaNER dir, same labels and vocab) whose emissions the
    # student also matches, by ``distill_loss`` (see :func:`distill_loss`) times ``distill_weight``.
    teacher: str | None = None
    distill_weight: float = 1.0
    distill_loss: str = "mse"
    # Where it trains: "cpu", or "cuda" for a lent GPU machine (scripts/train_accelerated.sh). Run
    # state is always saved on the CPU, so a run started on a GPU resumes on a CPU and back.
    device: str = "cpu"


Example = tuple[list[int], list[int], list[int]]  # input_ids, word_index, tag ids


def _chunks(sent: Sentence, size: int) -> list[Sentence]:
    return [
        Sentence(sent.text[i : i + size], sent.tags[i : i + size]) for i in range(0, len(sent.text), size)
    ]


def make_examples(sents: list[Sentence], enc: CharEncoder, label2id: dict[str, int], max_words: int) -> list[Example]:
    """Encode sentences in char mode, cutting long ones into ``max_words`` pieces."""
    out = []
    for sent in sents:
        for piece in _chunks(sent, max_words):
            e = enc.encode(piece.text)
            out.append((e.input_ids, e.word_index, [label2id[t] for t in piece.tags]))
    return out


SELECTION = "macro-average exact-match F1 over the dev files"


def parse_weighted(spec: str) -> tuple[str, float]:
    """``FILE[:WEIGHT]`` -> (file, weight); the weight must be a positive number.

    Raises:
        ValueError: the weight is not a positive finite number.
    """
    path, sep, raw = spec.rpartition(":")
    if not sep or not path:
        return spec, 1.0
    try:
        weight = float(raw)
    except ValueError:
        raise ValueError(f"--train {spec}: weight {raw!r} is not a number (FILE[:WEIGHT])") from None
    if not weight > 0 or weight == float("inf"):
        raise ValueError(f"--train {spec}: weight {raw!r} must be a positive number")
    return path, weight


def epoch_order(sizes: list[int], weights: list[float], rng: random.Random) -> list[int]:
    """Example indices for one epoch when file ``i`` (``sizes[i]`` examples, numbered in file
    order) is sampled with weight ``weights[i]``: ``floor(w)`` full passes plus a random
    ``frac(w)`` share of it, so a 74k-char social-media file at weight 4 is seen as often as
    296k chars of it, and 3M chars of news at 0.3 as 900k. Counts are exact for a given seed.
    """
    order: list[int] = []
    base = 0
    for n, w in zip(sizes, weights):
        whole, frac = int(w), w - int(w)
        for _ in range(whole):
            order.extend(range(base, base + n))
        order.extend(base + j for j in rng.sample(range(n), round(frac * n)))
        base += n
    return order


def make_batches(examples: list[Example], batch_tokens: int, rng: random.Random,
                 order: list[int] | None = None) -> list[list[int]]:
    """Group example indices (``order``, default all once) by length so padding stays small;
    batch order shuffled."""
    order = list(range(len(examples))) if order is None else list(order)
    rng.shuffle(order)
    pool = 100 * max(1, batch_tokens // 64)
    batches = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda j: len(examples[j][0]))
        cur: list[int] = []
        longest = 0
        for j in chunk:
            n = len(examples[j][0])
            if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
                batches.append(cur)
                cur, longest = [], 0
            cur.append(j)
            longest = max(longest, n)
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example]) -> dict[str, torch.Tensor]:
    """Pad a list of examples into tensors."""
    bsz = len(examples)
    t_max = max(len(e[0]) for e in examples)
    w_max = max(len(e[1]) for e in examples)
    ids = torch.zeros(bsz, t_max, dtype=torch.long)
    att = torch.zeros(bsz, t_max, dtype=torch.long)
    widx = torch.zeros(bsz, w_max, dtype=torch.long)
    wmask = torch.zeros(bsz, w_max, dtype=torch.bool)
    tags = torch.zeros(bsz, w_max, dtype=torch.long)
    for b, (i, w, t) in enumerate(examples):
        ids[b, : len(i)] = torch.tensor(i)
        att[b, : len(i)] = 1
        widx[b, : len(w)] = torch.tensor(w)
        wmask[b, : len(w)] = True
        tags[b, : len(t)] = torch.tensor(t)
    return {"input_ids": ids, "attention_mask": att, "word_index": widx, "word_mask": wmask, "tags": tags}


def init_model(init: str, num_labels: int, layers: int | None) -> BertCrf:
    """A BertCrf whose encoder starts from a BERT directory (optionally its first ``layers``).

    Raises:
        ValueError: ``init`` is a shiti ONNX artifact, which has no torch weights to load: recover
            it first (:func:`~worker.model.from_onnx.resolve_init`, as :func:`train` does).
    """
    if is_onnx_artifact(init):
        raise ValueError(f"init {init} is an ONNX artifact: recover its FP32 weights first (worker.model."
                         f"from_onnx.recover_raner_dir; `shiti model train` does it into OUT/{INIT_DIR})")
    cfg = BertConfig.from_pretrained(init)
    if layers:
        cfg.num_hidden_layers = layers
    model = BertCrf(cfg, num_labels)
    own = Path(init) / "pytorch_model.bin"
    if own.exists() and (Path(init) / "configuration.json").exists():
        # A RaNER-layout BERT-CRF (e.g. an earlier run's best/): continue from all of it, head included.
        state = torch.load(own, map_location="cpu", weights_only=True)
        state = {k.removeprefix("head."): v for k, v in state.items() if not k.endswith("position_ids")}
        model.load_state_dict(state, strict=False)
        return model
    weights = Path(init) / "model.safetensors"
    state = load_file(str(weights)) if weights.exists() else torch.load(Path(init) / "pytorch_model.bin", weights_only=True)
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    missing, _ = model.encoder.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("pooler.") and "position_ids" not in k]
    if missing:
        raise ValueError(f"init {init} lacks encoder weights: {missing[:5]}")
    return model


@torch.inference_mode()
def dev_f1(model: BertCrf, examples: list[Example], labels: list[str], batch_tokens: int, *,
           collate_fn: Callable[[list[Example]], dict[str, torch.Tensor]] = collate,
           emissions: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
           device: str = "cpu") -> float:
    """Exact-match F1 of the model on encoded dev examples (pieces of ``max_words``).

    ``collate_fn`` and ``emissions`` let a variant with extra inputs (the input-feature levers the
    model card records) be scored the same way; by default the model's own emissions of ``collate``'s batches.
    """
    model.eval()
    gold, pred = [], []
    order = sorted(range(len(examples)), key=lambda j: len(examples[j][0]))
    for start in range(0, len(order), 64):
        part = [examples[j] for j in order[start : start + 64]]
        batch = _on(collate_fn(part), device)
        em = (emissions(batch) if emissions is not None
              else model.emissions(batch["input_ids"], batch["attention_mask"], batch["word_index"]))
        paths = model.crf.decode(em, mask=batch["word_mask"])
        for ex, path in zip(part, paths):
            spans = [(i, i + 1) for i in range(len(path))]
            found = tags_to_spans([labels[t] for t in path], spans)
            pred.append({(s.start, s.end, s.label) for s in found})
            gold.append(bio_spans([labels[t] for t in ex[2]]))
    model.train()
    return score(gold, pred)["f1"]


#: What a trained model learned from, written beside its weights (``best/lineage.json``) and
#: carried into an artifact's manifest as ``trained_on`` by ``shiti model quantize``.
LINEAGE = "lineage.json"


def training_lineage(cfg: TrainConfig) -> dict[str, Any]:
    """The run's sources: where it started (and what that model had learned from, for an
    artifact), each training file with its hash, weight and, for corrections, the jobs and
    correction sets they came from (the file's ``.lineage.json``), and the dev files."""
    def sha(path: str) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    init: dict[str, Any] = {"path": cfg.init}
    manifest = Path(cfg.init) / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        init.update(files=data.get("files"), trained_on=data.get("trained_on"))
    files = []
    for i, path in enumerate(cfg.train):
        entry: dict[str, Any] = {"file": path, "sha256": sha(path),
                                 "weight": cfg.weights[i] if cfg.weights else 1.0}
        beside = sidecar(path)
        if beside.is_file():
            entry["corrections"] = json.loads(beside.read_text(encoding="utf-8"))
        files.append(entry)
    dev = [cfg.dev] if isinstance(cfg.dev, str) else list(cfg.dev or [])
    return {"init": init, "train": files, "dev": [{"file": p, "sha256": sha(p)} for p in dev],
            "teacher": cfg.teacher}


def train(cfg: TrainConfig, *, resume: bool = False, max_steps: int | None = None,
          max_seconds: float | None = None) -> dict:
    """Run (or continue) training; returns a summary with the best dev F1.

    Args:
        cfg: the run's settings; when resuming, the saved ones but for file locations, threads and device.
        resume: continue from ``OUT/state.pt``.
        max_steps: stop after this many optimizer steps in this call (for tests, time slicing).
        max_seconds: stop (state saved) once this call has run this long: a lent machine's time.
    """
    started = time.monotonic()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.pt"
    saved = torch.load(state_path, weights_only=False, map_location="cpu") if resume and state_path.exists() else None
    if saved:
        # The same run; where its files are and what it runs on are this machine's (a run packed on
        # a GPU machine resumes here with the data at other paths).
        here = {k: getattr(cfg, k) for k in ("init", "train", "dev", "out", "teacher", "threads", "device")}
        cfg = TrainConfig(**{**saved["config"], **here})
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = cfg.device
    autocast = "cuda" if device.startswith("cuda") else "cpu"
    bf16 = cfg.bf16 if cfg.bf16 is not None else (
        torch.cuda.is_available() and torch.cuda.is_bf16_supported() if autocast == "cuda"
        else torch.backends.mkldnn.is_available() and _cpu_has_bf16())
    labels = cfg.labels
    label2id = {lab: i for i, lab in enumerate(labels)}
    # An ONNX artifact as --init is recovered to FP32 once, into OUT/init-from-artifact, and reused
    # (a resumed run resolves the same --init to the same directory); cfg.init keeps what was given.
    init = resolve_init(cfg.init, out)
    tokenizer, _ = read_tokenizer(init)
    enc = CharEncoder(tokenizer)
    weights = cfg.weights or [1.0] * len(cfg.train)
    if len(weights) != len(cfg.train) or any(not w > 0 for w in weights):
        raise ValueError(f"need one positive weight per train file, got {weights} for {cfg.train}")
    per_file = [list(read_bio(path)) for path in cfg.train]
    dev_files = [cfg.dev] if isinstance(cfg.dev, str) else list(cfg.dev or [])
    devs: dict[str, list[Sentence]] = {}
    for path in dev_files:
        devs[path] = list(read_bio(path))
        if not any(bio_spans(s.tags) for s in devs[path]):
            raise ValueError(f"dev file {path} has no entities: it cannot score a checkpoint")
    if not devs:  # carve a fixed dev split from train (never from a test file)
        sents = [s for file in per_file for s in file]
        random.Random(cfg.seed).shuffle(sents)
        devs["carved"], per_file, weights = sents[: cfg.dev_size], [sents[cfg.dev_size :]], [1.0]
    known = set(labels)
    for name, file in [*zip(cfg.train, per_file), *devs.items()]:
        bad = next((t for s in file for t in s.tags if t not in known), None)
        if bad is not None:
            raise ValueError(f"{name}: tag {bad!r} is not one of {labels}")
    file_ex = [make_examples(f, enc, label2id, cfg.max_words) for f in per_file]
    train_ex = [e for ex in file_ex for e in ex]
    sizes = [len(ex) for ex in file_ex]
    dev_ex = {name: make_examples(d, enc, label2id, cfg.max_words) for name, d in devs.items()}

    def epoch_batches(ep: int) -> list[list[int]]:
        rng_ep = random.Random(cfg.seed + ep)
        return make_batches(train_ex, cfg.batch_tokens, rng_ep, epoch_order(sizes, weights, rng_ep))

    teacher = _load_teacher(cfg.teacher, labels, init).to(device) if cfg.teacher else None
    model = init_model(str(init), len(labels), cfg.layers)
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    body = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    # fused=True: one kernel per step instead of several elementwise passes over every
    # parameter (the optimizer step showed up in profiles of CPU training).
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}], weight_decay=0.01,
                            fused=True)
    steps_per_epoch = len(epoch_batches(0))
    total = max(1, int(cfg.epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * max(0.0, 1 - s / total)
    )
    step, best, epoch, pos, chars_done, seconds = 0, -1.0, 0, 0, 0, 0.0
    if saved:
        model.load_state_dict(saved["model"])
    model.to(device)  # before the optimizer state is loaded: its moments follow the parameters' device
    if saved:
        if saved.get("optimizer") is not None:  # a run unpacked without its moments starts fresh ones
            opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        step, best, epoch, pos = saved["step"], saved["best"], saved["epoch"], saved["pos"]
        chars_done, seconds = saved.get("chars", 0), saved.get("seconds", 0.0)
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "init_dir": str(init), "selection": SELECTION},
                                                indent=2))
    lineage = json.dumps(training_lineage(cfg), ensure_ascii=False, indent=2)
    model.train()
    bar = tqdm(total=total, initial=step, desc="train", unit="step", dynamic_ncols=True)
    log = open(out / "train.log", "a")
    batches = epoch_batches(epoch)
    done_here = 0
    t_last = time.time()

    def save_state() -> None:
        tmp = out / "state.pt.tmp"
        torch.save(
            {"config": asdict(cfg), "model": _cpu(model.state_dict()), "optimizer": _cpu(opt.state_dict()),
             "scheduler": sched.state_dict(), "step": step, "best": best, "epoch": epoch, "pos": pos,
             "chars": chars_done, "seconds": seconds, "rng": rng.getstate(), "torch_rng": torch.get_rng_state()},
            tmp,
        )
        tmp.replace(state_path)

    while step < total and (max_steps is None or done_here < max_steps) and (
            max_seconds is None or time.monotonic() - started < max_seconds):
        if pos >= len(batches):
            epoch, pos = epoch + 1, 0
            batches = epoch_batches(epoch)
        batch = _on(collate([train_ex[j] for j in batches[pos]]), device)
        pos += 1
        with torch.autocast(autocast, dtype=torch.bfloat16, enabled=bf16):
            em = model.emissions(batch["input_ids"], batch["attention_mask"], batch["word_index"])
        loss = model.loss(em, batch["tags"], batch["word_mask"])
        if teacher is not None:
            loss = loss + cfg.distill_weight * distill_loss(teacher, em, batch, kind=cfg.distill_loss, bf16=bf16,
                                                            device_type=autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        done_here += 1
        n_chars = int(batch["word_mask"].sum())
        chars_done += n_chars
        now = time.time()
        seconds += now - t_last
        t_last = now
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", cps=f"{chars_done / max(seconds, 1e-9):.0f}", ep=epoch)
        if step % cfg.eval_every == 0 or step == total:
            per_dev = {name: round(dev_f1(model, ex, labels, cfg.batch_tokens, device=device), 5)
                       for name, ex in dev_ex.items()}
            f1 = sum(per_dev.values()) / len(per_dev)
            log.write(json.dumps({"step": step, "epoch": epoch, "loss": loss.item(), "dev_f1": f1,
                                  "dev_f1_per_file": per_dev, "selection": SELECTION,
                                  "seconds": round(seconds), "time": time.time()}) + "\n")
            log.flush()
            if f1 > best:
                best = f1
                write_raner_dir(model, labels=labels, vocab=init / "vocab.txt", out=out / "best", char_mode=True)
                (out / "best" / LINEAGE).write_text(lineage, encoding="utf-8")
            t_last = time.time()  # evaluation time is not training time
        if step % cfg.ckpt_every == 0:
            save_state()
    save_state()
    bar.close()
    log.close()
    # Never evaluated (tiny runs), or resumed on another machine from a packed state (which does not
    # carry best/): keep the current weights as "best".
    if best < 0 or not (out / "best" / "pytorch_model.bin").exists():
        write_raner_dir(model, labels=labels, vocab=init / "vocab.txt", out=out / "best", char_mode=True)
        (out / "best" / LINEAGE).write_text(lineage, encoding="utf-8")
    return {"step": step, "total": total, "best_dev_f1": best, "seconds": seconds}


def _load_teacher(path: str, labels: list[str], init: Path) -> BertCrf:
    """The frozen teacher of a distillation run (a RaNER dir, e.g. an earlier run's best/).

    Raises:
        ValueError: not a RaNER dir, or its labels or vocabulary differ from the student's
            (its emissions would then score other labels, or other characters).
    """
    where = Path(path)
    if not (where / "configuration.json").exists():
        raise ValueError(f"teacher {path} is not a RaNER directory (an earlier run's best/ or a fetched model)")
    theirs = read_labels(where)
    if theirs != labels:
        raise ValueError(f"teacher {path} has labels {theirs}, the student trains {labels}")
    if (where / "vocab.txt").read_bytes() != (init / "vocab.txt").read_bytes():
        raise ValueError(f"teacher {path} has another vocab.txt than --init {init}: both must tokenize alike")
    teacher = init_model(path, len(labels), None)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


DISTILL_LOSSES = ("mse", "kl")
KL_TEMPERATURE = 2.0


def distill_loss(teacher: BertCrf, student_emissions: torch.Tensor, batch: dict[str, torch.Tensor],
                 *, kind: str = "mse", bf16: bool = False, device_type: str = "cpu") -> torch.Tensor:
    """How far the student's emissions are from the teacher's, averaged over real words.

    Matching emissions passes on what the teacher knows beyond the gold path: how close the
    other labels came at every character. ``mse``: squared difference of the emission scores
    per label (logit matching, Ba & Caruana 2014); ``kl``: KL divergence of the teacher's
    per-character label distribution from the student's at temperature 2, times T^2 (Hinton
    et al. 2015), which ignores the scale of labels both rule out. The CRF transitions start
    from the teacher's, since the student is initialised from it.
    """
    if kind not in DISTILL_LOSSES:
        raise ValueError(f"distill loss must be one of {DISTILL_LOSSES}, not {kind!r}")
    with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        target = teacher.emissions(batch["input_ids"], batch["attention_mask"], batch["word_index"]).float()
    student = student_emissions.float()
    mask = batch["word_mask"].to(student.dtype)
    words = mask.sum().clamp(min=1.0)
    if kind == "kl":
        t = KL_TEMPERATURE
        p_teacher = torch.softmax(target / t, dim=-1)
        kl = (p_teacher * (torch.log_softmax(target / t, dim=-1) - torch.log_softmax(student / t, dim=-1))).sum(-1)
        return (kl * mask).sum() / words * t * t
    return ((student - target) ** 2 * mask.unsqueeze(-1)).sum() / (words * student.size(-1))


def _on(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return batch if device == "cpu" else {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _cpu(value: Any) -> Any:
    """A state dict (nested) with every tensor on the CPU: run state resumes on any machine."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
