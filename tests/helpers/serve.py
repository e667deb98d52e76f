"""``shiti serve`` as a real subprocess on a free port, stopped by process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.broker.redis_server import free_port
from storage.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def wait_http(url: str, *, timeout: float) -> None:
    """Poll ``url`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


@contextmanager
def serve(settings: Settings, log_path: Path, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``shiti serve`` with ``settings`` (plus ``env``); yields its base URL."""
    port = free_port()
    full_env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(ROOT), **(env or {})}
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from producer.cli.main import main; main()", "serve", "--port", str(port)],
        env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
