"""Real redis-server and `celery worker` subprocesses for tests, tracked and stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from producer.cli import worker_command
from storage.settings import Settings


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """Pool child pids (from /proc, no psutil needed)."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    out.append(int(entry.name))
        return out

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM the worker's process group (its own session), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Pool children die with their parent; make sure none outlives the test.
        _signal_group(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and child)."""
        _signal_group(self.pid, signal.SIGKILL)
        self.proc.wait(10)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the group id is the worker's pid: started with start_new_session
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class WorkerPool:
    """Starts workers for given settings and stops every one it started."""

    logdir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, settings: Settings, *, name: str | None = None,
              ready: Callable[[Path], bool] | None = None, timeout: float = 60.0) -> WorkerProcess:
        n = len(self.started)
        name = name or f"w{n}@test"
        argv, env = worker_command(settings, hostname=name, loglevel="INFO")
        log = self.logdir / f"worker-{n}.log"
        fh = log.open("wb")
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=Path(__file__).resolve().parents[2])
        fh.close()
        wp = WorkerProcess(proc, log)
        self.started.append(wp)
        deadline = time.monotonic() + timeout
        while b"ready." not in log.read_bytes():
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready after {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return wp

    def stop_all(self) -> None:
        for wp in self.started:
            wp.stop()
