"""The chaos driver shared by the chaos tests: a job on N real workers while pool children and
whole workers are SIGKILLed (and restarted) at random intervals; returns what happened."""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from producer.service import submit_corpus
from storage.sql.db import get_database
from storage.core.domain import DOC_TERMINAL, JOB_TERMINAL, JobStatus
from storage.sql.schema import document
from storage.core.settings import Settings
from tests.helpers.processes import WorkerPool, WorkerProcess
from tests.reliability.helpers import job_row, write_jsonl


@dataclass
class ChaosRun:
    """The measurements of one run (times are seconds from the submit)."""

    job_id: str
    seconds: float
    kills: list[dict[str, Any]]
    states: list[str]
    remaining_at_last_kill: int = 0
    last_kill_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def recoveries(self, what: str) -> list[float]:
        return [k["recovered_s"] for k in self.kills if k["what"] == what and "recovered_s" in k]


def _processing(settings: Settings, job_id: str) -> set[int]:
    with get_database(settings).read() as conn:
        return set(conn.execute(select(document.c.id).where(
            document.c.job_id == job_id, document.c.status == "processing")).scalars())


def _terminal_among(settings: Settings, ids: set[int]) -> set[int]:
    with get_database(settings).read() as conn:
        return set(conn.execute(select(document.c.id).where(
            document.c.id.in_(list(ids)), document.c.status.in_([s.value for s in DOC_TERMINAL]))).scalars())


def run_chaos(settings: Settings, workers: WorkerPool, docs: list[dict[str, str]], corpus: Path, *,
              n_workers: int, interval: tuple[float, float], kill_for: float, bound_s: float,
              child_share: float = 0.6, seed: int = 2024) -> ChaosRun:
    """Submit ``docs`` to ``n_workers`` workers; every ``interval`` seconds for the first ``kill_for``
    seconds, SIGKILL a random pool child (share ``child_share``) or whole worker (restarted at once);
    the first kill is a child, the second a whole worker.

    A kill counts as recovered (``recovered_s``) once every document that was ``processing`` at the
    kill is terminal (``bench/recovery.py`` measures when a killed batch runs again).
    Fails if the job is not terminal and recovered within ``bound_s``.
    """
    live: list[WorkerProcess] = [workers.start(settings) for _ in range(n_workers)]
    rng = random.Random(seed)
    started = time.monotonic()
    job_id = submit_corpus(settings, write_jsonl(corpus, docs)).job_id
    kills: list[dict[str, Any]] = []
    open_kills: list[tuple[dict[str, Any], float, set[int]]] = []
    states = [JobStatus.SUBMITTED.value]
    run = ChaosRun(job_id, 0.0, kills, states)
    next_kill = started + rng.uniform(*interval)
    while True:
        row = job_row(settings, job_id)
        state = row["status"]
        if state != states[-1]:
            states.append(state)
        for entry in list(open_kills):
            record, at, in_flight = entry
            if not in_flight or _terminal_among(settings, in_flight) == in_flight:
                record["recovered_s"] = round(time.monotonic() - at, 2)
                open_kills.remove(entry)
        if state in JOB_TERMINAL and not open_kills:
            break
        now = time.monotonic()
        assert now - started < bound_s, f"job not terminal after {bound_s} s: {state}, kills {kills}"
        if state not in JOB_TERMINAL and now >= next_kill and now - started < kill_for:
            i = rng.randrange(len(live))
            in_flight = _processing(settings, job_id)
            children = live[i].children()
            at = time.monotonic()
            record: dict[str, Any] = {"at_s": round(at - started, 1), "in_flight_docs": len(in_flight)}
            # The first two kills are one of each kind, so even a short run sees both.
            child = rng.random() < child_share if len(kills) >= 2 else len(kills) == 0
            if child and children:
                os.kill(children[0], signal.SIGKILL)
                record["what"] = "child"
            else:
                live[i].kill()
                record["what"] = "worker"
                live[i] = workers.start(settings)
                record["restart_s"] = round(time.monotonic() - at, 2)
            kills.append(record)
            open_kills.append((record, at, in_flight))
            run.last_kill_s = at - started
            run.remaining_at_last_kill = int(row["total"] - row["done"] - row["failed"] - row["cancelled"])
            next_kill = time.monotonic() + rng.uniform(*interval)
        time.sleep(0.2)
    run.seconds = time.monotonic() - started
    return run
