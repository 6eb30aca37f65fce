"""A local HTTP server that speaks the parts of GitHub's REST API a release uses (get release
by tag, create release, update release, list assets, delete asset, upload asset through the
release's upload_url), with GitHub's response shapes and status codes. Only on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeGitHub:
    def __init__(self, token: str, repository: str) -> None:
        self.token, self.repository = token, repository
        self.releases: list[dict] = []
        self.blobs: dict[int, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in order
        self.fail_next: int | None = None  # a status to answer the next call with
        self._ids = iter(range(1000, 10**6))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def release(self, tag: str) -> dict | None:
        return next((r for r in self.releases if r["tag_name"] == tag), None)

    def _release_json(self, release: dict) -> dict:
        repo = self.repository
        return {**release, "url": f"{self.url}/repos/{repo}/releases/{release['id']}",
                "html_url": f"https://github.com/{repo}/releases/tag/{release['tag_name']}",
                "assets_url": f"{self.url}/repos/{repo}/releases/{release['id']}/assets",
                "upload_url": f"{self.url}/uploads/repos/{repo}/releases/{release['id']}/assets{{?name,label}}",
                "author": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, body: object = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _route(self, method: str) -> None:
                parsed = urlparse(self.path)
                path = parsed.path
                fake.requests.append((method, path))
                body = self._body()
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"message": "Bad credentials",
                                            "documentation_url": "https://docs.github.com/rest"})
                if fake.fail_next is not None:
                    status, fake.fail_next = fake.fail_next, None
                    return self._send(status, {"message": "Server Error"})
                repo = re.escape(fake.repository)
                if method == "GET" and (m := re.fullmatch(rf"/repos/{repo}/releases/tags/(.+)", path)):
                    release = fake.release(m[1])
                    return self._send(200, fake._release_json(release)) if release else \
                        self._send(404, {"message": "Not Found"})
                if method == "POST" and re.fullmatch(rf"/repos/{repo}/releases", path):
                    payload = json.loads(body)
                    if fake.release(payload["tag_name"]):
                        return self._send(422, {"message": "Validation Failed",
                                                "errors": [{"resource": "Release", "code": "already_exists",
                                                            "field": "tag_name"}]})
                    release = {"id": next(fake._ids), "tag_name": payload["tag_name"],
                               "target_commitish": payload.get("target_commitish", "main"),
                               "name": payload.get("name"), "body": payload.get("body"),
                               "draft": payload.get("draft", False), "prerelease": payload.get("prerelease", False),
                               "created_at": "2026-11-25T12:00:00Z", "published_at": "2026-11-25T12:00:00Z",
                               "assets": []}
                    fake.releases.append(release)
                    return self._send(201, fake._release_json(release))
                if method == "PATCH" and (m := re.fullmatch(rf"/repos/{repo}/releases/(\d+)", path)):
                    release = next(r for r in fake.releases if r["id"] == int(m[1]))
                    release.update({k: v for k, v in json.loads(body).items() if k in ("name", "body")})
                    return self._send(200, fake._release_json(release))
                if method == "GET" and (m := re.fullmatch(rf"/repos/{repo}/releases/(\d+)/assets", path)):
                    release = next(r for r in fake.releases if r["id"] == int(m[1]))
                    query = parse_qs(parsed.query)
                    per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
                    return self._send(200, release["assets"][(page - 1) * per_page: page * per_page])
                if method == "DELETE" and (m := re.fullmatch(rf"/repos/{repo}/releases/assets/(\d+)", path)):
                    for release in fake.releases:
                        release["assets"] = [a for a in release["assets"] if a["id"] != int(m[1])]
                    return self._send(204)
                if method == "POST" and (m := re.fullmatch(rf"/uploads/repos/{repo}/releases/(\d+)/assets", path)):
                    release = next(r for r in fake.releases if r["id"] == int(m[1]))
                    name = parse_qs(parsed.query)["name"][0]
                    if any(a["name"] == name for a in release["assets"]):
                        return self._send(422, {"message": "Validation Failed",
                                                "errors": [{"resource": "ReleaseAsset", "code": "already_exists",
                                                            "field": "name"}]})
                    asset_id = next(fake._ids)
                    asset = {"id": asset_id, "name": name, "label": "", "state": "uploaded",
                             "content_type": self.headers.get("Content-Type"), "size": len(body),
                             "download_count": 0,
                             "url": f"{fake.url}/repos/{fake.repository}/releases/assets/{asset_id}",
                             "browser_download_url": f"https://github.com/{fake.repository}/releases/download/"
                                                     f"{release['tag_name']}/{name}"}
                    fake.blobs[asset_id] = body
                    release["assets"].append(asset)
                    return self._send(201, asset)
                return self._send(404, {"message": "Not Found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler
