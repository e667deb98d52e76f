"""Shared helpers of the pipeline benchmarks: model, corpus, processes, RSS, tables.

The benchmarks run the real thing (embedded redis-server, ``celery worker`` subprocesses,
SQLite or PostgreSQL); this module only starts, measures and stops them, by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# torch's quantized-tensor deprecation chatter would bury the tables.
warnings.filterwarnings("ignore", category=UserWarning)

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
VOCAB = SHARED / "vocab" / "bert-base-chinese-vocab.txt"
MSRA_TEST = SHARED / "msra" / "test.txt"
from storage.processes.launch import WorkerProcess as Worker  # noqa: E402 (after the sys.path line)
from storage.processes.launch import children_of  # noqa: E402
from storage.core.settings import DEFAULT_MODEL as _DEFAULT  # noqa: E402

DEFAULT_MODEL = Path(_DEFAULT)
RANDOM_MODELS = REPO / "data" / "bench"  # gitignored
BIO_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
SMALL_SHAPE = {"num_hidden_layers": 6, "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536}
BASE_SHAPE = {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}


def base_parser(doc: str | None) -> argparse.ArgumentParser:
    """``--model DIR`` and ``--runs N``, shared by every script."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL),
                   help="model dir (default: the shipped default model; a random model of the same "
                        "shape is built when it does not exist)")
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (medians are printed)")
    return p


# ------------------------------------------------------------------------------------------ model


def random_model(shape: str = "small") -> Path:
    """A random char-mode BERT-CRF (7 BIO labels, bert-base-chinese vocab) as an ONNX INT8 artifact.

    Cached under ``data/bench/``. Same shape means same speed as a trained model: the
    weights' values do not change the compute. The "O" logit is raised so the model finds
    about one entity per 30 characters, like MSRA's gold (27.9): an unbiased random model
    finds one per 2.5 and would inflate the cost of writing entities tenfold.
    """
    out = RANDOM_MODELS / f"random-{shape}-int8"
    if (out / "manifest.json").exists():
        return out
    import torch
    from transformers import BertConfig

    from worker.model.artifact import quantize
    from worker.model.network import BertCrf
    from worker.model.raner_dir import write_raner_dir

    dims = SMALL_SHAPE if shape == "small" else BASE_SHAPE
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=21128, max_position_embeddings=512, type_vocab_size=2, **dims)
    model = BertCrf(cfg, len(BIO_LABELS))
    with torch.no_grad():
        model.linear.bias[BIO_LABELS.index("O")] += 1.75
    raner = RANDOM_MODELS / f"random-{shape}-raner"
    if not (raner / "configuration.json").exists():
        write_raner_dir(model, labels=BIO_LABELS, vocab=VOCAB, out=raner, char_mode=True)
    del model
    quantize(raner, out)
    return out


def resolve_model(path: str) -> tuple[str, str]:
    """``(model_dir, description)``: the given dir, or a random small model when it is missing."""
    if Path(path).exists():
        return str(Path(path).resolve()), Path(path).name
    if Path(path).resolve() != DEFAULT_MODEL.resolve():
        raise SystemExit(f"no model at {path}")
    return str(random_model("small")), "random 6x384 INT8 (the default model is missing)"


# ----------------------------------------------------------------------------------------- corpus


def msra_sentences() -> list[str]:
    """The MSRA test sentences as plain text (labels dropped)."""
    from worker.model.bio import read_bio

    return [s.text for s in read_bio(MSRA_TEST) if s.text.strip()]


def sample_sentences() -> list[str]:
    """Chinese text to cut synthetic documents and names from: the MSRA test sentences where the
    shared data is present, else the bundled news corpus (a fresh clone, CI)."""
    if MSRA_TEST.exists():
        return msra_sentences()
    import json

    path = REPO / "producer" / "samples" / "news.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_corpus(*, fraction: float = 1.0, long_docs: int = 12, seed: int = 0) -> list[dict[str, str]]:
    """MSRA test sentences as documents plus ``long_docs`` documents of 2k-20k characters made
    by concatenating sentences (log-uniform lengths). ``fraction`` < 1 scales both down."""
    sents = msra_sentences()
    rng = random.Random(seed)
    n = max(1, int(len(sents) * fraction))
    docs = [{"id": f"s{i}", "text": t} for i, t in enumerate(sents[:n])]
    for k in range(max(1, int(long_docs * fraction)) if long_docs else 0):
        target = int(2000 * 10 ** (k / max(1, long_docs - 1)))  # 2,000 .. 20,000
        parts, size = [], 0
        while size < target:
            s = sents[rng.randrange(len(sents))]
            parts.append(s)
            size += len(s)
        docs.append({"id": f"long{k}", "text": "".join(parts)[:target]})
    return docs


def write_jsonl(docs: Sequence[dict[str, str]], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def corpus_chars(docs: Sequence[dict[str, str]]) -> int:
    return sum(len(d["text"]) for d in docs)


# -------------------------------------------------------------------------------------- processes


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of a process in KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(settings: Any, *, name: str, logdir: Path, timeout: float = 180.0,
                 extra_env: dict[str, str] | None = None) -> Worker:
    """Start ``celery worker`` exactly as ``shiti worker`` would (``storage.processes.launch``) and wait for
    "ready." plus the child's model load (the "model ... ready in" log line)."""
    from storage.processes.launch import start_worker as launch

    return launch(settings, log=logdir / f"{name.split('@')[0]}.log", hostname=name, timeout=timeout,
                  ready=lambda text: b"ready." in text and b"ready in" in text, extra_env=extra_env)


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[Any]:
    """A redis-server for ``data_dir`` (the same one ``shiti submit`` would start); stopped after."""
    from storage.broker.redis_server import embedded_dir, start_redis, stop_redis
    from storage.core.settings import Settings

    server = start_redis(embedded_dir(Settings(data_dir=data_dir)))
    try:
        yield server
    finally:
        stop_redis(server)


def shiti(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the ``shiti`` console entry point (``python -m producer.cli.main``) as a subprocess."""
    return subprocess.run([sys.executable, "-m", "producer.cli.main", *args], env=env, cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=True)


def wait_job(settings: Any, job_id: str, *, poll: float = 0.05, timeout: float = 3600,
             on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """``producer.service.wait_job`` with the benches' fast polling."""
    from producer.service import wait_job as wait

    return wait(settings, job_id, timeout=timeout, poll=poll, on_status=on_poll)


@dataclass
class Pipeline:
    """A running pipeline: embedded redis + workers, all sharing one data dir (SQLite)."""

    settings: Any
    env: dict[str, str]
    workers: list[Worker]
    redis_pid: int
    redis: Any = None  # the RedisServer (port, dir): restart it in place with storage.broker.redis_server

    def _pids(self) -> list[int]:
        return [self.redis_pid] + [p for w in self.workers for p in (w.pid, *children_of(w.pid))]

    def submit_and_wait(self, corpus: Path, *args: str, timeout: float = 3600) -> dict[str, Any]:
        """``shiti submit corpus [args]`` and poll until the job is terminal.

        Returns:
            ``{"wall": submit start -> job terminal s, "submit_cmd": s, "worker_span": first
            claim -> finished s (SQL timestamps), "cpu": CPU s of the submit command, redis and
            the workers (parents and children) over that time, "status": final job_status}``.
        """
        import resource
        from datetime import datetime

        pids = self._pids()
        cpu0 = {p: cpu_seconds(p) for p in pids}
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = shiti("submit", str(corpus), "--json", *args, env=self.env)
        t_submit = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        job_id = json.loads(out.stdout.strip().splitlines()[-1])["job_id"]
        final = wait_job(self.settings, job_id, timeout=timeout)
        wall = time.perf_counter() - t0
        parts = {"submit cmd": cli_cpu, "redis": cpu_seconds(self.redis_pid) - cpu0[self.redis_pid],
                 "worker parents": sum(cpu_seconds(w.pid) - cpu0[w.pid] for w in self.workers)}
        parts["worker children"] = sum(cpu_seconds(p) - c for p, c in cpu0.items()) - parts["redis"] \
            - parts["worker parents"]
        cpu = sum(parts.values())
        if final["state"] != "succeeded":
            raise RuntimeError(f"job ended {final['state']}: {final}")
        span = (datetime.fromisoformat(final["finished_at"]).timestamp()
                - datetime.fromisoformat(final["started_at"]).timestamp())
        return {"wall": wall, "submit_cmd": t_submit, "worker_span": span, "cpu": cpu, "cpu_parts": parts,
                "status": final}


@contextmanager
def pipeline(model: str, root: Path, *, workers: int = 1, threads: int = 1, **overrides: Any) -> Iterator[Pipeline]:
    """Start redis and ``workers`` workers (``threads`` model threads each) on a fresh data dir;
    the workers have loaded and warmed up their model when this yields. Stops all by pid.

    ``overrides``: other settings (e.g. ``batch_docs=37``), for the workers and the submit command."""
    from storage.sql.db import dispose_all
    from storage.core.settings import Settings

    data = root / f"data-{time.monotonic_ns()}"
    env = {**os.environ, "SHITI_DATA_DIR": str(data), "SHITI_MODEL": model, "SHITI_THREADS": str(threads),
           **{f"SHITI_{k.upper()}": str(v) for k, v in overrides.items()}}
    env.pop("SHITI_REDIS_URL", None)
    env.pop("SHITI_DATABASE_URL", None)
    started: list[Worker] = []
    with embedded_redis(data) as server:
        settings = Settings(data_dir=data, model=model, threads=threads, redis_url=server.url, **overrides)
        try:
            for i in range(workers):
                started.append(start_worker(settings, name=f"w{i}@bench", logdir=root))
            yield Pipeline(settings, env, started, server.pid, server)
        finally:
            for w in started:
                w.stop()
            dispose_all()
            shutil.rmtree(data, ignore_errors=True)


def cpu_note() -> str:
    """Core count and load average: numbers taken on a busy machine are contended."""
    return f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}"


# ------------------------------------------------------------------------------------------ tables


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(c: Any) -> str:
    if isinstance(c, float):
        if c != c:
            return "-"
        return f"{c:,.0f}" if abs(c) >= 100 else f"{c:.3g}" if abs(c) < 1 else f"{c:.2f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)
