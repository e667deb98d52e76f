"""Linux network namespaces as stand-in hosts: each has its own network stack (loopback, one
address on a private bridge) and reaches the others only over that bridge, as separate machines
on a LAN would. Needs root and iproute2 (``ip``); skips otherwise, except under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest


def require_netns() -> None:
    """Skip (fail under CI=true) where namespaces cannot be made: not root, or no ``ip``."""
    problem = ""
    if os.geteuid() != 0:
        problem = "network namespaces need root"
    elif shutil.which("ip") is None:
        problem = "iproute2 (`ip`) is not installed"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Lan:
    """A bridge in the test's own namespace (address ``.1``) and one namespace per host."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    subnet: str = "10.231.0"
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address

    @property
    def bridge(self) -> str:
        return f"shb{self.tag}"

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> str:
        """A namespace ``name`` with its own loopback and an address on the bridge; returns the address."""
        ns, n = self.ns(name), len(self.hosts) + 2
        addr = f"{self.subnet}.{n}"
        outer, inner = f"sh{self.tag}{n}", f"sh{self.tag}{n}i"
        _ip("netns", "add", ns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = addr
        return addr

    def ns(self, name: str) -> str:
        return f"shiti-{self.tag}-{name}"

    def prefix(self, name: str) -> list[str]:
        """argv prefix that runs a command on host ``name``."""
        return ["ip", "netns", "exec", self.ns(name)]

    def pids(self, name: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns(name)], capture_output=True, text=True, timeout=30)
        return [int(p) for p in out.stdout.split()]

    def kill_host(self, name: str) -> int:
        """SIGKILL every process on host ``name`` (the machine losing power); returns how many."""
        killed = 0
        for _ in range(20):
            pids = self.pids(name)
            if not pids:
                return killed
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        return killed

    def down(self) -> None:
        for name in list(self.hosts):
            self.kill_host(name)
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


@contextmanager
def lan(*names: str) -> Iterator[Lan]:
    """A LAN of hosts ``names``; every process on them is killed and the namespaces removed after."""
    require_netns()
    net = Lan()
    net.up()
    try:
        for name in names:
            net.add_host(name)
        yield net
    finally:
        net.down()
