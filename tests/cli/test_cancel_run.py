"""Against the real engine and real `nexus-agent run` processes: a build past its deadline is
stopped in the engine and fails alone; Ctrl-C or SIGTERM stops the builds and test containers
within seconds and exits 130; after a `kill -9`, the next run removes the test containers the
killed one left and marks its Dagster run failed; a full working copy is one line."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.cancel import Cancelled
from nexus_assets.core.errors import BuildError
from nexus_assets.images.build import build_image, plan_build
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import find_services
from nexus_assets.testing.cleanup import TEST_LABEL, WORKDIR_LABEL, label_created
from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.conftest import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]


def _sleepy(service_dir: Path) -> str:
    """Make the service's build hang in a RUN step; returns the command, unique to this test."""
    command = f"sleep {random.randint(100000, 199999)}"
    dockerfile = service_dir / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app\n", f"WORKDIR /app\nRUN {command}\n", 1))
    return command


def _hanging_unit_test(service_dir: Path) -> None:
    test_file = next((service_dir / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\nclass Hangs(unittest.TestCase):\n    def test_hangs(self):\n"
                         "        import time\n        time.sleep(900)\n")


def _left_in_engine(client, command: str) -> list[str]:
    """Containers (any state) running command, and host processes running it."""
    found = [c["Names"][0] for c in client.api.containers(all=True) if command in (c.get("Command") or "")]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return found + [line for line in ps.splitlines() if command in line]


def _test_containers(client, workdir: Path) -> list[dict]:
    """This workdir's test containers, as one listing (no inspect that races their removal)."""
    return [c for c in client.api.containers(all=True, filters={"label": TEST_LABEL})
            if (c.get("Labels") or {}).get(WORKDIR_LABEL) == str(workdir)]


def _test_networks(client, workdir: Path) -> list[dict]:
    """This workdir's test networks (one per service that declares infrastructure, shared by its
    unit and integration stages)."""
    return [n for n in client.api.networks(filters={"label": TEST_LABEL})
            if (n.get("Labels") or {}).get(WORKDIR_LABEL) == str(workdir)]


def _hanging_test_running(client, workdir: Path) -> list[dict]:
    return [c for c in _test_containers(client, workdir) if c["State"] == "running"
            and c["Labels"].get("io.nexus-assets.service") == "py-svc-003"
            and c["Labels"].get("io.nexus-assets.stage") == "unit"]


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    return repo


@pytest.fixture
def agent(tmp_path, repo, unique_registry):
    """Starts `nexus-agent run` on repo as a process of its own, output in a file."""
    # PYTHONFAULTHANDLER: a run that does not stop is sent SIGABRT and prints where every thread was.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "PYTHONUNBUFFERED": "1",
           "PYTHONFAULTHANDLER": "1"}
    workdir = tmp_path / "work"
    started = []

    def start(*flags: str, name: str = "run") -> tuple[subprocess.Popen, Path]:
        out = tmp_path / f"{name}.out"
        with open(out, "w") as sink:
            proc = subprocess.Popen([*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(workdir),
                                     "--registry", unique_registry, *flags],
                                    stdout=sink, stderr=subprocess.STDOUT, env=env)
        started.append(proc)
        return proc, out

    start.workdir = workdir
    start.env = env
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_build_past_its_deadline_is_stopped_in_the_engine(tmp_path, repo, docker_client, unique_registry,
                                                            remove_test_images):
    service = next(s for s in find_services(repo) if s.name == "node-svc-001")
    command = _sleepy(service.path)
    plan = plan_build(service, docker_client, load_base_image_map())
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"service node-svc-001: build timed out after 5s") as failure:
        build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=None, source="test",
                    log_path=tmp_path / "build.log", timeout=5)
    assert time.monotonic() - started < 15
    assert "build.log" in str(failure.value)
    assert command in (tmp_path / "build.log").read_text()  # it did reach the hanging step
    wait_until(lambda: not _left_in_engine(docker_client, command), 30, f"the engine to drop `{command}`")
    assert not docker_client.images.list(name=f"{unique_registry}/nexus/node-svc-001")


def test_the_timed_out_service_fails_alone_and_the_others_are_built(settings_for, repo, tmp_path, monkeypatch,
                                                                    docker_client, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    command = _sleepy(repo / "services" / "node-svc-002")
    started = time.monotonic()
    summary = run_pipeline(settings_for(repo, build_timeout=20))
    assert summary.failed == ["node-svc-002"]
    assert sorted(summary.built) == ["node-svc-001", "py-svc-003"]
    assert time.monotonic() - started < 240
    log = (settings_for(repo).reports / "build_node-svc-002.log").read_text()
    assert "ERROR: build timed out after 20s" in log
    wait_until(lambda: not _left_in_engine(docker_client, command), 30, f"the engine to drop `{command}`")


@pytest.mark.parametrize("signum, during", [(signal.SIGINT, "build"), (signal.SIGTERM, "tests")])
def test_an_interrupted_run_stops_within_seconds_and_exits_130(agent, repo, docker_client, signum, during,
                                                               remove_test_images):
    if during == "build":
        command = _sleepy(repo / "services" / "node-svc-001")
        proc, out = agent()
        build_log = agent.workdir / "reports" / "build_node-svc-001.log"

        def hanging() -> bool:  # the classic builder says "Running in"; BuildKit's step is a host process
            text = build_log.read_text() if build_log.is_file() else ""
            return command in text and ("Running in" in text.split(command, 1)[1]
                                        or bool(_left_in_engine(docker_client, command)))

        wait_until(hanging, 240, "the hanging build step to start")
    else:
        _hanging_unit_test(repo / "services" / "py-svc-003")
        proc, out = agent("--test-timeout", "600")
        wait_until(lambda: _hanging_test_running(docker_client, agent.workdir), 240, "the hanging unit test to run")
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=30)
        pytest.fail(f"still running 60 s after the signal; where it was:\n{out.read_text()[-20000:]}")
    took = time.monotonic() - sent
    text = out.read_text()
    assert code == 130, text
    assert took < 15, f"took {took:.1f}s to stop"
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == "nexus-agent: interrupted: builds and test containers stopped", text
    assert "artifacts_manifest" not in text  # it did not go on to the release steps
    if during == "build":
        wait_until(lambda: not _left_in_engine(docker_client, command), 30, f"the engine to drop `{command}`")
    assert _test_containers(docker_client, agent.workdir) == []
    instance = dg.DagsterInstance.from_config(agent.env["DAGSTER_HOME"])
    statuses = {r.status for r in instance.get_runs()}
    assert statuses and statuses <= {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}, statuses


def test_once_removed_a_client_starts_no_new_test_container(tmp_path, docker_client):
    """The fault: a unit stage whose container the cancel removed ran the tests again in a new
    container, which nothing removed, and the interrupted process waited for it at exit."""
    import docker

    from nexus_assets.target.baseimages import load_base_image_map

    client = docker.from_env()
    created = label_created(client, tmp_path)
    try:
        first = client.containers.create(load_base_image_map().base, command=["sleep", "60"],
                                         labels={TEST_LABEL: "1"})
        created.remove_with(docker_client)
        with pytest.raises(Cancelled, match="interrupted"):
            client.containers.create(load_base_image_map().base, command=["sleep", "60"], labels={TEST_LABEL: "1"})
        with pytest.raises(Cancelled):
            client.networks.create(f"nexus-test-{tmp_path.name}", labels={TEST_LABEL: "1"})
        assert not _test_containers(docker_client, tmp_path), "nothing of this client is left"
        assert not _test_networks(docker_client, tmp_path)
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(first.id)
    finally:
        created.remove_with(docker_client)  # whatever the fault left
        client.close()


def _with_redis(repo: Path, name: str) -> None:
    """name depends_on an image-only redis: its tests run on a test network of their own (a
    service that declares no infrastructure gets none)."""
    compose = repo / "docker-compose.yml"
    text = compose.read_text().replace(f"    build: ./services/{name}\n",
                                       f"    build: ./services/{name}\n    depends_on: [redis]\n", 1)
    compose.write_text(text + "  redis:\n    image: redis:7\n")


def test_the_next_run_cleans_up_after_a_killed_one(agent, repo, docker_client, remove_test_images):
    _hanging_unit_test(repo / "services" / "py-svc-003")
    _with_redis(repo, "py-svc-003")
    proc, _ = agent("--test-timeout", "600", name="killed")
    hanging = wait_until(lambda: _hanging_test_running(docker_client, agent.workdir), 240, "the hanging unit test to run")
    proc.kill()  # SIGKILL: nothing of ours runs
    proc.wait(timeout=30)
    time.sleep(1)
    assert docker_client.containers.get(hanging[0]["Id"]).status == "running", "the fault: it stays running"
    left = [c["Id"] for c in _test_containers(docker_client, agent.workdir)]
    networks = [n["Id"] for n in _test_networks(docker_client, agent.workdir)]
    assert networks, "the hanging test's network is left too"
    home = agent.env["DAGSTER_HOME"]
    instance = dg.DagsterInstance.from_config(home)
    killed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED]
    assert len(killed) == 1

    test_file = next((repo / "services" / "py-svc-003" / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text().split("\n\nclass Hangs")[0] + "\n")
    proc, out = agent(name="next")
    code = proc.wait(timeout=600)
    text = out.read_text()
    assert code == 0, text
    assert (f"cleaned up after a killed run: removed {len(left)} container(s), {len(networks)} network(s); "
            "marked 1 run(s) failed") in text
    remaining = {c["Id"] for c in docker_client.api.containers(all=True)}
    assert not remaining & set(left)
    assert _test_containers(docker_client, agent.workdir) == []
    assert _test_networks(docker_client, agent.workdir) == []
    instance = dg.DagsterInstance.from_config(home)
    assert instance.get_run_by_id(killed[0].run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_full_working_copy_is_one_line_naming_it(tmp_path, repo, unique_registry):
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (this test fills a disk for real)")
    (repo / "services" / "node-svc-001" / "blob.bin").write_bytes(os.urandom(3 << 20))  # > the 2 MB disk
    workdir = tmp_path / "full"
    workdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(workdir)], check=True)
    agent = [*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(workdir), "--registry", unique_registry]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    try:
        done = subprocess.run(agent, capture_output=True, text=True, timeout=300, env=env)
        text = done.stdout + done.stderr
        assert done.returncode == 1, text
        assert "Traceback" not in text and "sqlalchemy" not in text.lower()
        errors = [line for line in text.splitlines() if " failed: " in line or "ERROR" in line]
        assert errors == [f"[nexus] step workspace failed: no space left on device: "
                          f"{workdir}/services/node-svc-001/blob.bin"], text
        # Nothing half-written is left: the copy went beside the file and is gone.
        left = [p.name for p in (workdir / "services" / "node-svc-001").iterdir()]
        assert "blob.bin" not in left and not [n for n in left if n.endswith(".nexus-part")], left
        # Once there is room (the blob goes), the next run on the same disk completes.
        (repo / "services" / "node-svc-001" / "blob.bin").unlink()
        again = subprocess.run(agent, capture_output=True, text=True, timeout=300, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        subprocess.run(["umount", "-l", str(workdir)], check=False)
