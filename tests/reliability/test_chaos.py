"""Chaos: jobs on 3 real workers while pool children and whole workers are SIGKILLed every few
seconds and restarted. Nothing may be lost or duplicated, and the entity rows must equal a clean
reference exactly.

- short timings (lease 8 s, visibility 12 s): many kills in little time;
- **default settings** (no tuned lease, heartbeat or visibility timeout), as users run them: a
  20,000-document job on the fake model, kills every 3-8 s for 60 s, and the job done within 60 s
  of what the work left at the last kill needs at the clean run's pace;
- default settings on the **shipped model** (8,000 documents; its output does not depend on batching, so the
  rows must equal the in-process tagger's exactly).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from producer.service import submit_corpus
from storage.sql import repo
from storage.sql.db import get_database
from storage.core.domain import DOC_TERMINAL, JOB_TRANSITIONS, JobStatus
from storage.broker.redis_server import RedisServer
from storage.core.settings import DEFAULT_MODEL, Settings
from tests.helpers.jobs import stored_entities, wait_terminal
from tests.helpers.processes import WorkerPool
from tests.reliability.chaos import ChaosRun, run_chaos
from tests.reliability.helpers import (
    ARTIFACTS,
    doc_rows,
    duplicate_rows,
    job_row,
    make_texts,
    reference_entities,
    short_settings,
    write_jsonl,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_WORKERS = 3
SLOW_MODEL = "py:tests.helpers.fake_tagger:make_slow_tagger"
CHAOS_MODEL = "py:tests.helpers.fake_tagger:make_chaos_tagger"


def _check(settings: Settings, run: ChaosRun, n_docs: int, expected: Counter[Any], name: str,
           **extra: Any) -> dict[str, Any]:
    """Assert nothing lost, duplicated or changed, and the job moved along the state machine."""
    db = get_database(settings)
    rows = doc_rows(settings, run.job_id)
    final = job_row(settings, run.job_id)
    lost = sum(r["status"] not in {s.value for s in DOC_TERMINAL} for r in rows)
    got = stored_entities(settings, run.job_id)
    report = {
        "documents": len(rows), "workers": N_WORKERS, "kills": len(run.kills),
        "child_kills": len(run.recoveries("child")), "worker_kills": len(run.recoveries("worker")),
        "lost": lost, "duplicate_rows": duplicate_rows(settings, run.job_id), "entity_rows": sum(got.values()),
        "reference_rows": sum(expected.values()), "job_state": final["status"], "job_seconds": round(run.seconds, 1),
        "last_kill_s": round(run.last_kill_s, 1), "remaining_at_last_kill": run.remaining_at_last_kill,
        "max_attempts_seen": max(r["attempts"] for r in rows),
        "recovery_child_s": {"max": max(run.recoveries("child"), default=None), "all": run.recoveries("child")},
        "recovery_worker_s": {"max": max(run.recoveries("worker"), default=None), "all": run.recoveries("worker")},
        "job_states": run.states, **extra, "kill_log": run.kills,
    }
    print(f"chaos {name}:", json.dumps({k: v for k, v in report.items() if k != "kill_log"}))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"chaos_{name}.json").write_text(json.dumps(report, indent=2) + "\n")

    assert len(rows) == n_docs and lost == 0
    assert all(r["status"] == "done" for r in rows), [r for r in rows if r["status"] != "done"][:3]
    assert all(r["attempts"] <= settings.max_attempts for r in rows)
    assert report["duplicate_rows"] == 0
    assert got == expected
    assert final["status"] == "succeeded"
    assert run.recoveries("child") and run.recoveries("worker"), run.kills
    counters = {k: final[k] for k in ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}
    assert repo.recount(db, run.job_id) == counters
    assert all(JobStatus(b) in JOB_TRANSITIONS[JobStatus(a)] for a, b in zip(run.states, run.states[1:]))
    return report


def _defaults(tmp_path: Path, server: RedisServer, model: str, **kw: Any) -> Settings:
    """Default recovery settings; only the data dir, broker, model and a private queue are set."""
    return Settings(data_dir=tmp_path / "data", redis_url=server.url, model=model,
                    queue=f"q-{uuid.uuid4().hex[:8]}", **kw)


def test_chaos_kills_lose_and_duplicate_nothing(tmp_path: Path, redis_server: RedisServer,
                                               workers: WorkerPool) -> None:
    # Given 3 workers (~50 ms per document), short timings, and a 2,000-document job
    settings = short_settings(tmp_path, redis_server, model=SLOW_MODEL)
    docs = make_texts(2000, seed=11)
    # When, every 2-4 s, a random pool child or a whole worker is SIGKILLed (and restarted)
    run = run_chaos(settings, workers, docs, tmp_path / "chaos.jsonl", n_workers=N_WORKERS, interval=(2, 4),
                    kill_for=10_000, bound_s=170)
    # Then every document is done once with the reference entities
    report = _check(settings, run, len(docs), reference_entities(docs), "short")
    assert report["kills"] >= 5


def _clean_seconds(settings: Settings, workers: WorkerPool, docs: list[dict[str, str]], corpus: Path) -> float:
    """Wall time of the same job on the same number of workers without faults."""
    live = [workers.start(settings) for _ in range(N_WORKERS)]
    t0 = time.monotonic()
    job_id = submit_corpus(settings, write_jsonl(corpus, docs)).job_id
    wait_terminal(settings, job_id, timeout=600)
    seconds = time.monotonic() - t0
    for w in live:
        w.stop()
    return seconds


def _late_seconds(run: ChaosRun, n_docs: int, clean_s: float) -> float:
    """How much later than the work left at the last kill needs (at the clean run's pace) the job ended."""
    return run.seconds - run.last_kill_s - run.remaining_at_last_kill * clean_s / n_docs


def test_chaos_at_default_settings_20k_documents(tmp_path: Path, redis_server: RedisServer,
                                                workers: WorkerPool) -> None:
    # Given default settings, 3 workers (~10 ms per document) and a 20,000-document job
    docs = make_texts(20_000, seed=23)
    clean_s = _clean_seconds(_defaults(tmp_path / "clean", redis_server, CHAOS_MODEL), workers, docs,
                             tmp_path / "clean.jsonl")
    settings = _defaults(tmp_path, redis_server, CHAOS_MODEL)
    # When kills hit every 3-8 s for 60 s
    run = run_chaos(settings, workers, docs, tmp_path / "chaos.jsonl", n_workers=N_WORKERS, interval=(3, 8),
                    kill_for=60, bound_s=clean_s + 300)
    # Then nothing is lost or changed, and the job is late by at most 60 s
    late = _late_seconds(run, len(docs), clean_s)
    _check(settings, run, len(docs), reference_entities(docs), "defaults", clean_s=round(clean_s, 1),
           late_s=round(late, 1))
    assert late <= 60, f"job ended {late:.0f} s after the work left at the last kill needed"


def test_chaos_at_default_settings_on_the_shipped_model(tmp_path: Path, redis_server: RedisServer,
                                                       workers: WorkerPool) -> None:
    # Given default settings and the shipped model in 3 workers, batches of 200 documents
    from worker.pipeline import annotate_text, load_configured_tagger

    settings = _defaults(tmp_path, redis_server, DEFAULT_MODEL, batch_docs=200)
    docs = make_texts(8000, seed=29)
    tagger = load_configured_tagger(settings)
    expected = Counter((d["id"], e.start, e.end, e.label, e.text)
                       for d in docs for e in annotate_text(d["text"], tagger, settings, folded=True))
    assert sum(expected.values()) > 1000
    # When kills hit every 3-5 s for 20 s (the shipped model is fast: the job must still be
    # running for the second kill, a whole worker)
    run = run_chaos(settings, workers, docs, tmp_path / "chaos.jsonl", n_workers=N_WORKERS, interval=(3, 5),
                    kill_for=20, bound_s=400)
    # Then the rows equal the in-process tagger's exactly
    _check(settings, run, len(docs), expected, "shipped_model")
