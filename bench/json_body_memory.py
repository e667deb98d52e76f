"""Peak and resident memory of ``shiti serve`` answering large JSON submits (issue: bounded JSON
bodies). Starts the server of a checkout (this one, or ``--repo`` for another, e.g. a worktree of
an earlier commit) on SQLite with no broker, posts JSON bodies of the given sizes one after the
other, and prints the server's RSS before, its peak (VmHWM) and RSS after each answer.

    python bench/json_body_memory.py --mb 200 --mb 30
    git worktree add /tmp/before 0509d4a && python bench/json_body_memory.py --repo /tmp/before --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024  # MiB
    return out


def _body(mb: float) -> bytes:
    text = "新华社北京电，张伟在上海复旦大学参加会议。" * 40  # ~1.8 kB of UTF-8 per document
    one = json.dumps({"id": "x", "text": text}, ensure_ascii=False).encode()
    n = max(1, int(mb * 1e6 / (len(one) + 8)))
    return b"[" + b",".join(json.dumps({"id": str(i), "text": text}, ensure_ascii=False).encode()
                            for i in range(n)) + b"]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose server to run")
    ap.add_argument("--mb", type=float, action="append", help="body sizes in MB, in order (default 200)")
    args = ap.parse_args()
    sizes = args.mb or [200.0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="shiti-jsonmem-")
    env = {**os.environ, "SHITI_DATA_DIR": data, "SHITI_REDIS_URL": "", "PYTHONPATH": str(args.repo)}
    proc = subprocess.Popen([sys.executable, "-c", "from producer.cli.main import main; main()", "serve", "--port",
                             str(port)], cwd=args.repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        print(f"server of {args.repo} (pid {proc.pid})")
        print("| body MB | answer | seconds | RSS before MiB | peak MiB | RSS after MiB |")
        print("|---:|---|---:|---:|---:|---:|")
        for mb in sizes:
            body = _body(mb)
            before = _status(proc.pid)["VmRSS"]
            t0 = time.monotonic()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/jobs", data=body, method="POST",
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    answer = str(r.status)
            except urllib.error.HTTPError as exc:
                answer = str(exc.code)
            except OSError as exc:  # the server closed the connection on a refused body
                answer = type(exc).__name__
            took = time.monotonic() - t0
            time.sleep(1.0)
            after = _status(proc.pid)
            print(f"| {len(body) / 1e6:.0f} | {answer} | {took:.1f} | {before} | {after['VmHWM']} | {after['VmRSS']} |")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


if __name__ == "__main__":
    main()
