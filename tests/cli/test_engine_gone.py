"""The Docker engine going away in the middle of a run, for real: a throwaway `dockerd` on its
own socket, data root and exec root, in a network namespace of its own (so it never touches
the main engine's docker0) and with no iptables rules, loaded with the base images of the main engine.
`nexus-agent run` runs against it (DOCKER_HOST); the engine is stopped while one service is
building and another is in its unit tests. Each affected service and step says so in one
line, no service is blamed for a test it did not fail, and once the engine is back the next
run completes and builds only what was not built."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nexus_assets.release.manifest import ServiceRecord, _status
from nexus_assets.testing.cleanup import TEST_LABEL, WORKDIR_LABEL
from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.conftest import wait_until

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]
DOCKER = "/usr/bin/docker"  # Debian's client: the classic builder, whatever else is on PATH
BASES = ["node:20-alpine", "python:3.11-slim"]  # what the synthetic services are built FROM


class ThrowawayEngine:
    """A dockerd of its own under root (a short path: the socket must fit in 108 bytes)."""

    def __init__(self, root: Path):
        self.root = root
        self.socket = root / "d.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "a")  # noqa: SIM115 - the daemon writes it while it runs
        # A network namespace of its own: a dockerd in the host's deletes or takes over the host's
        # docker0, the main engine's default bridge (seen with --bridge=none, and on a restart).
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "-H", self.host, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
             "--iptables=false", "--ip-masq=false", "--shutdown-timeout", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: self.docker("version", check=False).returncode == 0, 30, "the throwaway dockerd to answer")

    def stop(self) -> float:
        """SIGTERM, as `systemctl stop docker` does; returns how long it took to go."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return time.monotonic() - started

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True, text=True, check=check,
                              timeout=60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-R", "-l", str(self.root / "data")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def engine(docker_client):
    """A throwaway engine holding the main engine's base images (docker save | docker load)."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("unshare") is None:
        pytest.fail("this test starts a dockerd of its own: it needs root and Debian's docker.io")
    root = Path(f"/tmp/nxd-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    throwaway = ThrowawayEngine(root)
    docker0 = _host_docker0()
    try:
        throwaway.start()
        save = subprocess.Popen([DOCKER, "save", *BASES], stdout=subprocess.PIPE)
        load = subprocess.run([DOCKER, "-H", throwaway.host, "load"], stdin=save.stdout, capture_output=True,
                              text=True, timeout=120)
        assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr
        yield throwaway
    finally:
        throwaway.close()
        assert _host_docker0() == docker0, "the throwaway engine touched the main engine's docker0"


def _host_docker0() -> str:
    """The host's docker0 (index and name), as `ip -o link` shows it; '' when there is none."""
    shown = subprocess.run(["ip", "-o", "link", "show", "docker0"], capture_output=True, text=True).stdout
    return shown.split(":", 2)[0] + ":docker0" if shown else ""


def _agent(repo: Path, tmp_path: Path, registry: str, engine: ThrowawayEngine, name: str):
    out = tmp_path / f"{name}.out"
    env = {**os.environ, "DOCKER_HOST": engine.host, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "PYTHONUNBUFFERED": "1"}
    with open(out, "w") as sink:
        proc = subprocess.Popen([*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(tmp_path / "work"),
                                 "--registry", registry], stdout=sink, stderr=subprocess.STDOUT, env=env)
    return proc, out


@pytest.mark.docker
def test_the_engine_going_away_mid_run_is_said_per_service_and_the_next_run_builds_the_rest(
        engine, tmp_path, unique_registry):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    building, testing, done = "node-svc-002", "py-svc-003", "node-svc-001"
    dockerfile = repo / "services" / building / "Dockerfile"
    unit_test = next((repo / "services" / testing / "tests").glob("test_*.py"))
    originals = {dockerfile: dockerfile.read_text(), unit_test: unit_test.read_text()}
    command = f"sleep {random.randint(100000, 199999)}"
    dockerfile.write_text(originals[dockerfile].replace("WORKDIR /app\n", f"WORKDIR /app\nRUN {command}\n", 1))
    unit_test.write_text(originals[unit_test] + "\n\nclass Hangs(unittest.TestCase):\n    def test_hangs(self):\n"
                         "        import time\n        time.sleep(900)\n")
    workdir = tmp_path / "work"
    build_log = workdir / "reports" / f"build_{building}.log"

    def unit_running() -> bool:
        listing = engine.docker("ps", "--filter", f"label={TEST_LABEL}", "--filter",
                                f"label=io.nexus-assets.service={testing}", "--format", "{{.Label \"io.nexus-assets.stage\"}}",
                                check=False).stdout.split()
        return "unit" in listing

    def all_under_way() -> bool:
        text = build_log.read_text() if build_log.is_file() else ""
        # the classic builder says "Running in"; BuildKit's RUN step is a process on this host
        started = "Running in" in text.split(command, 1)[1] if command in text else False
        started = started or (command in text and subprocess.run(["pgrep", "-f", command], capture_output=True).returncode == 0)
        return started and f"built {done}" in out.read_text() and unit_running()

    proc, out = _agent(repo, tmp_path, unique_registry, engine, "first")
    try:
        wait_until(all_under_way, 150, f"{done} built, {building} in its RUN step and {testing} in its unit tests")
        engine.stop()
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    lines = text.strip().splitlines()
    assert code == 1, text
    assert "Traceback" not in text and "sqlalchemy" not in text.lower()
    # Each service the engine's going cut short says so, in one line; none blames its code or tests.
    for service, during in ((building, "during the build"), (testing, "during the unit stage")):
        (line,) = [line for line in lines if f"FAILED {service}:" in line]
        assert "lost the Docker engine" in line and during in line, line
    assert not [line for line in lines if done in line and "FAILED" in line], text
    assert not [line for line in lines if "tests FAILED" in line or "docker build failed" in line], text
    checks = [line for line in lines if line.startswith("[nexus] check ")]
    assert all(": not run: " in line for line in checks), checks
    # The step that needed the engine after that (the release tags) says why it broke, and what to do.
    (step,) = [line for line in lines if line.startswith("[nexus] step ")]
    assert step.startswith("[nexus] step service_images failed: EngineError: no Docker engine reachable at "
                           f"{engine.host}: start it with"), step
    assert lines[-1].startswith("[nexus] FAILED"), lines[-1]

    # The engine is back; the two services are put back as they were (neither was ever built).
    engine.start()
    left = engine.docker("ps", "-aq", "--filter", f"label={TEST_LABEL}", "--filter",
                         f"label={WORKDIR_LABEL}={workdir}").stdout.split()
    assert left, "the unit test's container outlived the engine's restart"
    image_before = engine.docker("image", "inspect", "-f", "{{.Id}}", f"{unique_registry}/nexus/{done}:1.0.0").stdout
    for path, text_before in originals.items():
        path.write_text(text_before)
    proc, out = _agent(repo, tmp_path, unique_registry, engine, "next")
    try:
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    # The throwaway engine lives in a network namespace of its own, where the session's registry
    # (on the host's loopback) is unreachable: every build and test passes, only the pushes fail,
    # said per service, and the manifest's digest gate (hence the release) with them.
    failures = [line for line in text.splitlines() if "FAILED" in line or "ERROR" in line]
    assert code == 1 and failures, text
    assert all("push" in line or "manifest_has_digests" in line or "registry digest" in line
               or "gate" in line or line.startswith("[nexus] FAILED") for line in failures), failures
    assert "tests FAILED" not in text and "lost the Docker engine" not in text
    assert "[nexus] 3 service(s): 2 to build, 1 current" in text
    assert f"built {building}" in text and f"built {testing}" in text and f"built {done}" not in text
    assert f"removed {len(left)} container(s)" in text
    assert engine.docker("ps", "-aq", "--filter", f"label={TEST_LABEL}").stdout.split() == []
    assert engine.docker("image", "inspect", "-f", "{{.Id}}",
                         f"{unique_registry}/nexus/{done}:1.0.0").stdout == image_before


def test_a_failed_build_no_longer_counts_once_the_image_is_current_again():
    """A build that failed (the engine went, or a change that was reverted) after the last image:
    while Dagster holds that image fresh it is the current one, and the manifest says so."""
    last = {"tests": {"lint": "passed", "unit": "passed", "integration": "passed"}}
    tagged = {"image_id": "sha256:x", "tags": ["r/nexus/a:1.0.0"]}
    fresh = ServiceRecord(name="a", last=last, failure="lost the Docker engine", stale=None, tagged=tagged)
    assert _status(fresh) == ("current", None)
    changed = ServiceRecord(name="a", last=last, failure="docker build failed", stale="source changed", tagged=tagged)
    assert _status(changed) == ("failed", "docker build failed")
    never = ServiceRecord(name="a", last=None, failure="docker build failed", stale=None, tagged=None)
    assert _status(never) == ("failed", "docker build failed")
