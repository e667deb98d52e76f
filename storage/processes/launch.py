"""Starting and stopping a worker process: the one place (``shiti worker``, ``shiti demo``, tests,
benches). It builds the ``celery -A worker.app worker`` command line and never imports the
worker's code, so the producer side may use it without importing ``worker``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.core.errors import ShitiError
from storage.broker.queue import queue_for
from storage.core.settings import REPO_ROOT, Settings, child_pythonpath

READY = b" ready."  # Celery's log line once the worker consumes


def worker_command(settings: Settings, *, hostname: str | None = None, loglevel: str = "INFO",
                   extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """argv and environment of a worker process for ``settings`` (prefork, one child) serving
    ``settings.model``: it consumes only that model's queue."""
    queue = queue_for(settings, settings.model_name)
    argv = [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-P", "prefork", "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
            "-l", loglevel, *(["-n", hostname] if hostname else []), *extra]
    n = str(settings.threads)
    env = {**os.environ, **settings.to_env(), "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    env["PYTHONPATH"] = child_pythonpath()
    return argv, env


def children_of(pid: int) -> list[int]:
    """Direct child pids of ``pid`` (from /proc, no psutil needed)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the group id is the worker's pid: started with start_new_session
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class WorkerProcess:
    """A ``celery worker`` started in its own session (its pid is the group of parent + pool child)."""

    proc: subprocess.Popen[bytes]
    log: Path
    ready_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """Pool child pids."""
        return children_of(self.pid)

    def child(self) -> int:
        """The pool child's pid (0 when there is none right now)."""
        kids = self.children()
        return kids[0] if kids else 0

    def stop(self, *, timeout: float = 30.0) -> None:
        """SIGTERM the group (the running batch saves what is done and releases the rest), SIGKILL
        after ``timeout``; no pool child outlives it."""
        if self.proc.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        _signal_group(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and child)."""
        _signal_group(self.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_worker(settings: Settings, *, log: Path, hostname: str | None = None, loglevel: str = "INFO",
                 timeout: float = 600.0, ready: Callable[[bytes], bool] = lambda text: READY in text,
                 extra_env: dict[str, str] | None = None) -> WorkerProcess:
    """Start a worker logging to ``log`` and wait until ``ready(log bytes)``.

    Raises:
        ShitiError: the worker exited (e.g. 78, a refused start) or was not ready in ``timeout`` s;
            the message ends with the log's tail.
    """
    argv, env = worker_command(settings, hostname=hostname, loglevel=loglevel)
    env.update(extra_env or {})
    t0 = time.monotonic()
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=REPO_ROOT)
    worker = WorkerProcess(proc, log)
    while not ready(log.read_bytes()):
        if proc.poll() is not None:
            raise ShitiError(f"worker exited with code {proc.returncode}; {log}:\n{_tail(log)}")
        if time.monotonic() - t0 > timeout:
            worker.stop()
            raise ShitiError(f"worker not ready after {timeout:.0f} s; {log}:\n{_tail(log)}")
        time.sleep(0.05)
    worker.ready_s = time.monotonic() - t0
    return worker


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:]
