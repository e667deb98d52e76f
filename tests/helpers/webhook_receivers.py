"""Real local HTTP receivers for the webhook tests: one that checks signatures and answers a
scripted list of statuses, and one that never answers (or trickles its answer)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from storage.webhook.http import verify

SECRET = "whsec-test-0123456789"


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that checks each signature like a customer would.

    ``statuses`` are answered in order (then 200); ``gate``, when given, holds every answer until
    it is set (concurrency tests).
    """

    def __init__(self, secret: str = SECRET, statuses: tuple[int, ...] = (), gate: threading.Event | None = None):
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses)
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({
                    "path": self.path, "headers": dict(self.headers.items()), "body": body,
                    "verified": verify(secret, self.headers.get("Shiti-Timestamp"),
                                       self.headers.get("Shiti-Signature"), body),
                })
                receiver.arrived.set()
                if gate is not None:
                    gate.wait(10)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/shiti?tenant=7"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts TCP connections and never answers (a hung receiver); ``trickle`` instead sends a
    status line and then one header byte every 0.1 s, forever."""

    def __init__(self, *, trickle: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.trickle = trickle
        self.stopped = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.trickle:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self.stopped.wait(0.1):
                conn.sendall(b"x")
        except OSError:
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()
        self.sock.close()
