"""Real ``celery worker`` subprocesses for tests (started with ``storage.processes.launch``), all stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from storage.processes.launch import READY, WorkerProcess, start_worker
from storage.core.settings import Settings

__all__ = ["WorkerPool", "WorkerProcess"]


@dataclass
class WorkerPool:
    """Starts workers for given settings and stops every one it started."""

    logdir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, settings: Settings, *, name: str | None = None,
              ready: Callable[[bytes], bool] = lambda text: READY in text, timeout: float = 60.0) -> WorkerProcess:
        n = len(self.started)
        worker = start_worker(settings, log=self.logdir / f"worker-{n}.log", hostname=name or f"w{n}@test",
                              ready=ready, timeout=timeout)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
