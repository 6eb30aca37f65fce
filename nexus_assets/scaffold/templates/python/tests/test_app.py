"""Unit tests: standard library unittest only (`python3 -m unittest discover -s tests`)."""

from __future__ import annotations

import json
import sys
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402

# Loopback only: never route test traffic through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AppTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = app.make_server("127.0.0.1", 0)
        cls.thread = threading.Thread(target=cls.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(timeout=5)

    def request(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with OPENER.open(req, timeout=5) as res:
                return res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def test_health_answers_200_with_status_ok_and_service_name(self) -> None:
        status, _, body = self.request("/health")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok", "service": "{{SERVICE_NAME}}"})

    def test_root_describes_service_name_and_version(self) -> None:
        status, _, body = self.request("/")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["name"], "{{SERVICE_NAME}}")
        self.assertEqual(doc["version"], app.VERSION)

    def test_every_get_path_in_openapi_answers_200(self) -> None:
        paths = [p for p, ops in app.SPEC["paths"].items() if "get" in ops]
        self.assertIn("/health", paths)
        for path in paths:
            with self.subTest(path=path):
                self.assertEqual(self.request(path)[0], 200)

    def test_openapi_is_openapi3_titled_after_service(self) -> None:
        self.assertTrue(app.SPEC["openapi"].startswith("3."))
        self.assertEqual(app.SPEC["info"]["title"], "{{SERVICE_NAME}}")
        self.assertEqual(app.SPEC["info"]["version"], app.VERSION)

    def test_status_reports_the_scaffolded_service(self) -> None:
        status, _, body = self.request("/status")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["service"], "{{SERVICE_NAME}}")
        self.assertIs(doc["scaffolded"], True)

    def test_unknown_path_answers_404_json(self) -> None:
        status, _, body = self.request("/no-such-path")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"], "not found")

    def test_post_is_refused_with_405(self) -> None:
        status, headers, _ = self.request("/health", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")


if __name__ == "__main__":
    unittest.main()
