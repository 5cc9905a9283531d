"""The ILB health probe: ``GET /gw/<SGC uid>`` → 200 when that gateway is in place on this node, else 503.

Seed semantics (``upstream-spec.md`` §4.3.4): any other path shape is 400. A gateway is "in place" once
its namespace, wg0 and rules were applied (and its wireguard-go is alive) in this process lifetime. On
SIGTERM :meth:`Probe.drain` makes every answer 503 first, so the load balancer moves new flows away
before the daemon exits (HEAD behaviour, drain delay configurable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Probe:
    def __init__(self, is_ready: Callable[[str], bool]) -> None:
        self.is_ready = is_ready
        self.draining = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, path: str) -> int:
        parts = path.split("?", 1)[0].split("/")
        if len(parts) != 3 or parts[0] != "" or parts[1] != "gw" or not parts[2]:
            return 400
        if self.draining:
            return 503
        return 200 if self.is_ready(parts[2]) else 503

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104 - the LB probes the node IP
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = probe.answer(self.path)
                body = {200: b"ok\n", 400: b"bad request\n", 503: b"unavailable\n"}[code]
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((addr, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="lb-probe", daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def drain(self) -> None:
        self.draining = True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
