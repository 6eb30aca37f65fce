"""A local webhook receiver on 127.0.0.1 standing in for Slack: records every POST body; can
answer 500, or hang (hold the request until the test ends)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode  # ok | error (HTTP 500) | hang
        self.messages: list[str] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # a secret-looking path, as Slack's are: it must never be printed
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/s3cr3tW3bh00kT0k3n"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.messages.append(json.loads(body)["text"])
                if receiver.mode == "hang":
                    receiver.release.wait(60)
                    return
                self.send_response(500 if receiver.mode == "error" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        return Handler
