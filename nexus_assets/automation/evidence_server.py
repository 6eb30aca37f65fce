"""The evidence file server: the reports, artifacts and release folders of one working copy over
HTTP, read-only, so that the Dagster UI's URL metadata (build and test logs, SBOMs, provenance,
the manifest, the PDF, the package) opens in a browser.

Only WORKDIR/reports, WORKDIR/artifacts and WORKDIR/releases are served: the working copy's
sources, Dagster's storage and the signing key beside them are not. A path with `..`, a hidden
part (`.nexus-signing`), a NUL or a backslash is refused (400), and so is a file or folder that
resolves outside its served folder (a link out: 403). GET and HEAD only; 127.0.0.1 by default.
The standard library's ThreadingHTTPServer: a few auditors' clicks, no framework needed.

    python -m nexus_assets.automation.evidence_server --workdir /tmp/nexus_agent --port 3001
"""

from __future__ import annotations

import argparse
import html
import io
import os
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nexus_assets.core.evidence import DEFAULT_EVIDENCE_PORT, EVIDENCE_FOLDERS
from nexus_assets.core.settings import DEFAULT_WORKDIR

# Text a browser should show, not download: logs, JSON lines, checksums, notes.
TEXT_TYPES = {".log": "text/plain; charset=utf-8", ".jsonl": "text/plain; charset=utf-8",
              ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
              ".json": "application/json", ".pub": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8"}


class Refused(Exception):
    def __init__(self, status: HTTPStatus, why: str):
        super().__init__(why)
        self.status, self.why = status, why


def resolve(workdir: Path, url_path: str) -> Path | None:
    """The file or folder a request names under workdir, None for the index page ("/"); Refused
    (400, 403 or 404) for a path outside the served folders."""
    raw = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path)
    parts = [p for p in raw.split("/") if p]
    if not parts:
        return None
    bad = next((p for p in parts if p in ("..", ".") or p.startswith(".") or "\\" in p or "\0" in p), None)
    if bad is not None:
        raise Refused(HTTPStatus.BAD_REQUEST, f"path part {bad!r} refused: only files under "
                                              f"{', '.join(EVIDENCE_FOLDERS)} are served")
    if parts[0] not in EVIDENCE_FOLDERS:
        raise Refused(HTTPStatus.NOT_FOUND, f"/{parts[0]} is not served: only {', '.join(EVIDENCE_FOLDERS)}")
    top = (workdir / parts[0]).resolve()
    target = workdir.joinpath(*parts)
    try:
        real = target.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise Refused(HTTPStatus.NOT_FOUND, f"no such file: {raw}") from None
    if real != top and not real.is_relative_to(top):
        raise Refused(HTTPStatus.FORBIDDEN, f"{raw} resolves outside {parts[0]}/ (a link out): refused")
    return real


def handler_for(workdir: Path) -> type[SimpleHTTPRequestHandler]:
    """A request handler serving workdir's evidence folders only."""

    class EvidenceHandler(SimpleHTTPRequestHandler):
        server_version = "nexus-evidence/1"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(workdir), **kwargs)

        def send_head(self) -> Any:  # GET and HEAD both come here
            try:
                path = resolve(workdir, self.path)
            except Refused as refused:
                self.send_error(refused.status, refused.why)
                return None
            if path is None:
                return self._index()
            if path.is_dir() and not self.path.split("?", 1)[0].endswith("/"):
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", self.path.split("?", 1)[0] + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return super().send_head()  # translate_path lands on the same file: checked above

        def guess_type(self, path: Any) -> str:
            name = str(path)
            if name.endswith(".tar.gz"):
                return "application/gzip"
            suffix = Path(name).suffix
            return TEXT_TYPES.get(suffix) or super().guess_type(path)

        def _index(self) -> io.BytesIO:
            links = "".join(f'<li><a href="/{html.escape(f)}/">{html.escape(f)}/</a></li>'
                            for f in EVIDENCE_FOLDERS if (workdir / f).is_dir())
            body = (f"<!doctype html><title>Evidence of {html.escape(str(workdir))}</title>"
                    f"<h1>Evidence of {html.escape(str(workdir))}</h1><ul>{links}</ul>").encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"evidence {self.address_string()} {format % args}\n")

    return EvidenceHandler


def make_server(workdir: Path, host: str = "127.0.0.1", port: int = DEFAULT_EVIDENCE_PORT) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0: a free one) serving workdir's evidence."""
    server = ThreadingHTTPServer((host, port), handler_for(Path(workdir).absolute()))
    server.daemon_threads = True
    return server


def serve_in_thread(workdir: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """make_server, serving from a daemon thread; server.shutdown() stops it."""
    server = make_server(workdir, host, port)
    threading.Thread(target=server.serve_forever, name="evidence-server", daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Flags, then NEXUS_WORKDIR, NEXUS_EVIDENCE_HOST and NEXUS_EVIDENCE_PORT, then defaults."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="nexus-evidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=env.get("NEXUS_WORKDIR") or str(DEFAULT_WORKDIR),
                        help="working copy whose reports/, artifacts/ and releases/ to serve (NEXUS_WORKDIR)")
    parser.add_argument("--host", default=env.get("NEXUS_EVIDENCE_HOST") or "127.0.0.1",
                        help="address to bind (NEXUS_EVIDENCE_HOST; default 127.0.0.1)")
    parser.add_argument("--port", default=env.get("NEXUS_EVIDENCE_PORT") or str(DEFAULT_EVIDENCE_PORT),
                        help=f"port (NEXUS_EVIDENCE_PORT; default {DEFAULT_EVIDENCE_PORT})")
    args = parser.parse_args(argv)
    if not str(args.port).isdigit() or not 0 < int(args.port) < 65536:
        parser.error(f"port (--port, NEXUS_EVIDENCE_PORT) must be 1-65535, got {args.port!r}")
    workdir = Path(args.workdir).expanduser().absolute()
    try:
        server = make_server(workdir, args.host, int(args.port))
    except OSError as exc:
        print(f"nexus-evidence: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
              "(set --port or NEXUS_EVIDENCE_PORT to a free port)", file=sys.stderr)
        return 2
    print(f"evidence of {workdir}: http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
