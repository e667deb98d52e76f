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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.broker.redis_server import free_port


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


class PgCluster:
    """A cluster in a temp dir on a free port that can be stopped and started again (outage tests)."""

    def __init__(self, *, host: str = "127.0.0.1", wrap: Sequence[str] = ()) -> None:
        """``host``: the address to listen on; ``wrap``: an argv prefix for the server's commands
        (e.g. ``ip netns exec NS`` to run it on another network namespace)."""
        self.bindir = require_postgres()
        self.root = Path(tempfile.mkdtemp(prefix="shiti-pg-"))
        self.prefix = [*wrap, *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])]
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")  # initdb refuses root
        self.host, self.data, self.port = host, self.root / "data", free_port()
        self.url = f"postgresql+psycopg://shiti@{host}:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "shiti", "--auth=trust", "-E", "UTF8", "--no-sync")
        if host != "127.0.0.1":  # initdb trusts loopback only: let the other (test) hosts in
            with (self.data / "pg_hba.conf").open("a") as fh:
                fh.write(f"host all all {host.rsplit('.', 1)[0]}.0/24 trust\n")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bindir / tool), *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses={self.host} -c fsync=off -c full_page_writes=off"
                + ("" if self.host == "127.0.0.1" else " -c max_connections=200"))
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        _wait(self.url)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are disconnected; ``immediate``: no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop (if running) and delete the cluster."""
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster in a temp dir; yield its SQLAlchemy URL; remove it afterwards."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.remove()


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
