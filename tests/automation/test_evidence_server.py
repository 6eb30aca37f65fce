"""The evidence file server over real HTTP on 127.0.0.1: it serves what the pipeline wrote under
reports/, artifacts/ and releases/, at the URLs the metadata carries, and nothing else of the
working copy (`..`, hidden folders, links out, other folders, writes)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from nexus_assets.automation.evidence_server import serve_in_thread
from nexus_assets.core.metadata import EvidenceLinks


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "reports").mkdir(parents=True)
    (work / "artifacts" / "sbom").mkdir(parents=True)
    (work / ".nexus-signing").mkdir()
    (work / "services" / "users").mkdir(parents=True)
    (work / "reports" / "build_users.log").write_text("step 1/3\nbuilt users\n", encoding="utf-8")
    (work / "reports" / "deployment_package_20261207.tar.gz").write_bytes(b"\x1f\x8b fake")
    (work / "artifacts" / "sbom" / "users.cdx.json").write_text('{"bomFormat": "CycloneDX"}', encoding="utf-8")
    (work / ".nexus-signing" / "ed25519.pem").write_text("PRIVATE KEY", encoding="utf-8")
    (work / "services" / "users" / "app.py").write_text("source", encoding="utf-8")
    (work / "reports" / "key").symlink_to(work / ".nexus-signing" / "ed25519.pem")
    return work


@pytest.fixture
def server(workdir: Path):
    running = serve_in_thread(workdir, "127.0.0.1", 0)
    yield running
    running.shutdown()
    running.server_close()


def _raw(server, method: str, path: str) -> tuple[int, bytes, dict]:
    """A request sent as written: http.client does not normalise `..` away as a browser would."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_serves_a_produced_file_at_the_url_the_metadata_carries(workdir, server):
    links = EvidenceLinks(workdir, f"http://127.0.0.1:{server.server_address[1]}")
    url = links.url(workdir / "reports" / "build_users.log")
    assert url == f"http://127.0.0.1:{server.server_address[1]}/reports/build_users.log"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")  # a log opens in the browser
        assert response.read() == b"step 1/3\nbuilt users\n"
    sbom = links.url(workdir / "artifacts" / "sbom" / "users.cdx.json")
    with urllib.request.urlopen(sbom, timeout=10) as response:
        assert response.read() == b'{"bomFormat": "CycloneDX"}'
        assert response.headers["Content-Type"] == "application/json"
    status, _, headers = _raw(server, "HEAD", "/reports/deployment_package_20261207.tar.gz")
    assert status == 200 and headers["content-type"] == "application/gzip"
    status, body, _ = _raw(server, "GET", "/")
    assert status == 200 and b'href="/reports/"' in body and b'href="/artifacts/"' in body
    status, body, _ = _raw(server, "GET", "/reports/")  # a folder lists its files
    assert status == 200 and b"build_users.log" in body


@pytest.mark.parametrize("path", ["/reports/../.nexus-signing/ed25519.pem", "/reports/%2e%2e/.nexus-signing/ed25519.pem",
                                  "/artifacts/..%2f.nexus-signing%2fed25519.pem", "/.nexus-signing/ed25519.pem",
                                  "/reports/..", "/reports/%00x"])
def test_refuses_dot_dot_and_hidden_paths(server, path):
    status, body, _ = _raw(server, "GET", path)
    assert status == 400, (path, status)
    assert b"PRIVATE KEY" not in body


def test_serves_no_other_folder_no_link_out_and_no_write(server):
    assert _raw(server, "GET", "/services/users/app.py")[0] == 404
    status, body, _ = _raw(server, "GET", "/reports/key")  # a link out of reports/
    assert status == 403 and b"PRIVATE KEY" not in body
    assert _raw(server, "GET", "/reports/missing.log")[0] == 404
    assert _raw(server, "POST", "/reports/build_users.log")[0] == 501
    assert _raw(server, "PUT", "/reports/new.log")[0] == 501


def test_links_only_for_served_folders(workdir):
    links = EvidenceLinks(workdir, "http://h:1/")
    assert links.url(workdir / ".nexus-signing" / "ed25519.pem") is None
    assert links.url(workdir / "services" / "users" / "app.py") is None
    assert links.url("/elsewhere/reports/x.log") is None
    assert links.url(workdir / "reports" / "a b#1.log") == "http://h:1/reports/a%20b%231.log"
    assert links.entry("log", workdir / "reports" / "x.log")["log_url"].value == "http://h:1/reports/x.log"
    assert links.entry("log", workdir / "services") == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_command_serves_from_the_environment(workdir):
    """`python -m nexus_assets.automation.evidence_server`, as dagster_stack.sh and the README's
    recipe start it: NEXUS_WORKDIR and NEXUS_EVIDENCE_PORT; a port in use is one line, exit 2."""
    port = _free_port()
    env = {**os.environ, "NEXUS_WORKDIR": str(workdir), "NEXUS_EVIDENCE_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "nexus_assets.automation.evidence_server"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"evidence of {workdir}: http://127.0.0.1:{port}/"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/reports/build_users.log", timeout=10) as response:
            assert response.read().endswith(b"built users\n")
        taken = subprocess.run([sys.executable, "-m", "nexus_assets.automation.evidence_server", "--port", str(port),
                                "--workdir", str(workdir)], capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr and "NEXUS_EVIDENCE_PORT" in taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
