"""A throwaway PostgreSQL cluster from Debian's binaries (initdb + pg_ctl on a free port).

Skips when the binaries are absent, except under ``CI=true`` where a missing server fails.
Runs as the ``postgres`` user when the tests run as root (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.redis_server import free_port


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_postgres() -> Path:
    """The binaries dir, or skip (fail under CI=true)."""
    bindir = pg_bindir()
    if bindir is None:
        msg = "PostgreSQL binaries not found (apt-get install postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return bindir


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster in a temp dir; yield its SQLAlchemy URL; stop it (pg_ctl stop -m immediate)."""
    bindir = require_postgres()
    root = Path(tempfile.mkdtemp(prefix="shiti-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "shiti", "--auth=trust", "-E", "UTF8", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
    try:
        url = f"postgresql+psycopg://shiti@127.0.0.1:{port}/postgres"
        _wait(url)
        yield url
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _wait(url: str, timeout: float = 30) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()
