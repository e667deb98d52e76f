"""Chaos: a 2,000-document job on 3 real workers while pool children and whole workers are
SIGKILLed every few seconds and restarted. Nothing may be lost or duplicated."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from producer.service import submit_corpus
from storage import repo
from storage.db import get_database
from storage.domain import DOC_TERMINAL, JOB_TERMINAL, JOB_TRANSITIONS, JobStatus
from storage.redis_server import RedisServer
from storage.schema import document
from tests.helpers.jobs import stored_entities
from tests.helpers.processes import WorkerPool, WorkerProcess
from tests.reliability.helpers import (
    ARTIFACTS, doc_rows, duplicate_rows, job_row, make_texts, reference_entities, short_settings, write_jsonl,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_DOCS = 2000
N_WORKERS = 3
JOB_BOUND_S = 170
SLOW_MODEL = "py:tests.helpers.fake_tagger:make_slow_tagger"


def _processing(settings, job_id: str) -> set[int]:  # type: ignore[no-untyped-def]
    with get_database(settings).read() as conn:
        return set(conn.execute(select(document.c.id).where(
            document.c.job_id == job_id, document.c.status == "processing")).scalars())


def _terminal_among(settings, ids: set[int]) -> set[int]:  # type: ignore[no-untyped-def]
    with get_database(settings).read() as conn:
        return set(conn.execute(select(document.c.id).where(
            document.c.id.in_(list(ids)), document.c.status.in_([s.value for s in DOC_TERMINAL]))).scalars())


def test_chaos_kills_lose_and_duplicate_nothing(tmp_path: Path, redis_server: RedisServer,
                                               workers: WorkerPool) -> None:
    # Given 3 workers (prefork -c 1, ~50 ms per document) and a 2,000-document job
    settings = short_settings(tmp_path, redis_server, model=SLOW_MODEL)
    docs = make_texts(N_DOCS, seed=11)
    live: list[WorkerProcess] = [workers.start(settings) for _ in range(N_WORKERS)]
    rng = random.Random(2024)
    started = time.monotonic()
    job_id = submit_corpus(settings, write_jsonl(tmp_path / "chaos.jsonl", docs)).job_id

    # When, every 2-4 s, a random pool child or a whole worker is SIGKILLed (and restarted)
    kills: list[dict[str, object]] = []
    open_kills: list[tuple[dict[str, object], float, set[int]]] = []
    states = [JobStatus.SUBMITTED.value]
    next_kill = time.monotonic() + rng.uniform(2, 4)
    while True:
        state = job_row(settings, job_id)["status"]
        if state != states[-1]:
            states.append(state)
        for entry in list(open_kills):
            record, at, in_flight = entry
            if not in_flight or _terminal_among(settings, in_flight) == in_flight:
                record["recovered_s"] = round(time.monotonic() - at, 2)
                open_kills.remove(entry)
        if state in JOB_TERMINAL and not open_kills:
            break
        assert time.monotonic() - started < JOB_BOUND_S, f"job not terminal after {JOB_BOUND_S} s: {state}"
        if state not in JOB_TERMINAL and time.monotonic() >= next_kill:
            i = rng.randrange(len(live))
            in_flight = _processing(settings, job_id)
            children = live[i].children()
            if rng.random() < 0.6 and children:
                os.kill(children[0], signal.SIGKILL)
                record: dict[str, object] = {"what": "child", "at_s": round(time.monotonic() - started, 1)}
                at = time.monotonic()
            else:
                live[i].kill()
                at = time.monotonic()
                record = {"what": "worker", "at_s": round(at - started, 1)}
                live[i] = workers.start(settings)
                record["restart_s"] = round(time.monotonic() - at, 2)
            record["in_flight_docs"] = len(in_flight)
            kills.append(record)
            open_kills.append((record, at, in_flight))
            next_kill = time.monotonic() + rng.uniform(2, 4)
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    # Then every document has exactly one terminal status, all done, and nothing is lost
    db = get_database(settings)
    rows = doc_rows(settings, job_id)
    final = job_row(settings, job_id)
    lost = sum(r["status"] not in {s.value for s in DOC_TERMINAL} for r in rows)
    duplicates = duplicate_rows(settings, job_id)
    got = stored_entities(settings, job_id)
    expected = reference_entities(docs)
    child_rec = [k["recovered_s"] for k in kills if k["what"] == "child"]
    worker_rec = [k["recovered_s"] for k in kills if k["what"] == "worker"]
    report = {
        "documents": len(rows), "workers": N_WORKERS, "kills": len(kills),
        "child_kills": len(child_rec), "worker_kills": len(worker_rec), "lost": lost,
        "duplicate_rows": duplicates, "entity_rows": sum(got.values()), "reference_rows": sum(expected.values()),
        "job_state": final["status"], "job_seconds": round(elapsed, 1),
        "max_attempts_seen": max(r["attempts"] for r in rows),
        "recovery_child_s": {"max": max(child_rec, default=None), "all": child_rec},
        "recovery_worker_s": {"max": max(worker_rec, default=None), "all": worker_rec},
        "job_states": states, "kill_log": kills,
    }
    print("chaos:", json.dumps({k: v for k, v in report.items() if k != "kill_log"}))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "chaos.json").write_text(json.dumps(report, indent=2) + "\n")

    assert len(rows) == N_DOCS and lost == 0
    assert all(r["status"] == "done" for r in rows), [r for r in rows if r["status"] != "done"][:3]
    assert all(r["attempts"] <= settings.max_attempts for r in rows)
    assert duplicates == 0
    assert got == expected
    assert final["status"] == "succeeded"
    assert len(kills) >= 5 and child_rec and worker_rec
    # Counters equal a recount, and the job only moved along the state machine
    counters = {k: final[k] for k in ("total", "done", "failed", "cancelled", "chars_total", "chars_done")}
    assert repo.recount(db, job_id) == counters
    assert all(JobStatus(b) in JOB_TRANSITIONS[JobStatus(a)] for a, b in zip(states, states[1:]))
