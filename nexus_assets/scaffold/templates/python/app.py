"""{{SERVICE_NAME}}: {{DESCRIPTION}}

Scaffolded by nexus-agent (operator guide step D). Standard library only, so the image
builds offline. `python3 app.py` starts it; tests import make_server() without starting
anything."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

SERVICE = "{{SERVICE_NAME}}"
VERSION = "0.1.0"
DEFAULT_PORT = int("{{PORT}}")
SPEC = json.loads((Path(__file__).resolve().parent / "openapi.json").read_text(encoding="utf-8"))
STARTED = time.monotonic()

Query = dict[str, list[str]]

# path -> (query) -> response body. Every path here is listed in openapi.json: add the
# module's real endpoints here and there together.
ROUTES: dict[str, Callable[[Query], Any]] = {
    "/health": lambda q: {"status": "ok", "service": SERVICE},
    "/": lambda q: {"name": SERVICE, "version": VERSION, "description": SPEC["info"]["description"]},
    "/openapi.json": lambda q: SPEC,
    "/status": lambda q: {"service": SERVICE, "version": VERSION, "scaffolded": True,
                          "uptime_seconds": round(time.monotonic() - STARTED)},
}


class Handler(BaseHTTPRequestHandler):
    """GET/HEAD on ROUTES, JSON everywhere, 404/405 for the rest."""

    server_version = f"{SERVICE}/{VERSION}"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._route(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(send_body=False)

    def _method_not_allowed(self) -> None:
        self._send(405, {"error": "method not allowed", "method": self.command}, headers={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed  # noqa: N815

    def _route(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        route = ROUTES.get(url.path)
        if route is None:
            self._send(404, {"error": "not found", "path": url.path}, send_body=send_body)
            return
        try:
            body = route(parse_qs(url.query))
        except Exception as exc:  # a bug in one route must not kill the server
            self.log_error("route %s failed: %r", url.path, exc)
            self._send(500, {"error": "internal error"}, send_body=send_body)
            return
        self._send(200, body, send_body=send_body)

    def _send(self, status: int, body: Any, send_body: bool = True, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        # One JSON line per request; the 2-second health probes would drown everything else.
        if self.path != "/health":
            sys.stderr.write(json.dumps({"service": SERVICE, "client": self.client_address[0],
                                         "message": format % args}) + "\n")


def make_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0 picks a free one), not yet serving."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main() -> int:
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    server = make_server(os.environ.get("HOST", "0.0.0.0"), port)

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    # As PID 1 in a container, SIGTERM must be handled or `docker stop` waits for the kill.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"event": "listening", "service": SERVICE, "port": server.server_address[1],
                      "version": VERSION}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print(json.dumps({"event": "stopped", "service": SERVICE}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
