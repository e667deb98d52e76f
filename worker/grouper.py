"""The corpus view of a job a worker's save finished, built in a process of its own.

The build (``storage.sql.groups``) holds every distinct entity text of the job in Python at once
and runs for minutes on a corpus of millions of documents. Run in the pool child it would hold a
worker for that long (against the task's time limit) and leave the child's heap that much larger
for the rest of its life, so the child only starts ``python -m worker.grouper JOB`` and goes on
with its next batch. A read that comes first builds the view itself, or waits for this one
(``groups.ensure``); a builder that fails or is stopped gives its claim back for the next read.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from storage.core.errors import InvalidTransition, NotFound
from storage.core.settings import Settings, child_pythonpath

log = logging.getLogger(__name__)

# Started builders not yet reaped (polled, so a finished one is not left as a zombie).
_STARTED: list[subprocess.Popen[bytes]] = []


def start(settings: Settings, job_id: str) -> None:
    """Start the view build of ``job_id`` in a child process, on ``settings``' database; returns
    at once."""
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": child_pythonpath()}
    # stdout/stderr inherited: the builder's log lines land in the worker's log.
    _STARTED.append(subprocess.Popen([sys.executable, "-m", "worker.grouper", job_id], env=env,
                                     stdin=subprocess.DEVNULL))


def main(argv: list[str]) -> int:
    """``python -m worker.grouper JOB``: build the job's view unless it is current or being
    built; exit 0 then too."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s shiti.grouper: %(message)s")
    # SIGTERM (a worker host shutting down) ends the build through Python, which gives the claim back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    from storage.sql import groups
    from storage.sql.db import get_database

    (job_id,) = argv
    try:
        state = groups.ensure(get_database(Settings.from_env()), job_id, wait=0)
    except (InvalidTransition, NotFound) as exc:  # another builder has it, or the job was purged
        log.info("job %s: %s", job_id, exc)
        return 0
    log.info("job %s: corpus view built over %d documents", job_id, state.documents)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
