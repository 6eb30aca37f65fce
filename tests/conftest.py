"""Shared fixtures. Tests marked `docker` use the real engine that scripts/bootstrap.sh starts;
pipeline runs push to a registry of the session's own (htpasswd auth, Debian's docker-registry)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

from nexus_assets.core.settings import SAMPLE_REPO, Settings


def fill_disk(folder: Path) -> None:
    """Write to folder/filler until its filesystem is full (ENOSPC, nothing else)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)  # unbuffered: no write left for close()
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str, *, full: bool = False):
    """A tmpfs of size mounted on mount (made if missing), filled up when full; unmounted after.
    Tests of a full disk fill a real one, so they need root and fail (never skip) without it."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (this test fills a disk for real)")
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        if full:
            fill_disk(mount)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def write(path: Path, text: str) -> None:
    """A UTF-8 text file at path, its folders made: a test's repository file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """One registry process; stop() and start() again keep its data (a restart)."""

    def __init__(self, root: Path, username: str, password: str, port: int | None = None) -> None:
        self.root, self.username, self.password = root, username, password
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        line = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True,
                              check=True).stdout.strip()
        (root / "htpasswd").write_text(line + "\n")
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\nauth:\n  htpasswd:\n    realm: nexus-test\n    path: {root / 'htpasswd'}\n")

    def start(self, timeout: float = 20.0) -> None:
        with open(self.root / "registry.log", "a") as log:
            self.process = subprocess.Popen(["docker-registry", "serve", str(self.root / "config.yml")],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://{self.address}/v2/", timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"registry on {self.address} did not start; see {self.root / 'registry.log'}")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=20)


# Where scripts/bootstrap.sh keeps the local registry's credentials (scripts/test.sh exports them).
CREDENTIALS_FILE = Path(os.environ.get("NEXUS_STATE_DIR") or "/var/lib/nexus-assets") / "registry" / "credentials.env"


@pytest.fixture(scope="session", autouse=True)
def registry_credentials() -> tuple[str, str]:
    """REGISTRY_USERNAME and REGISTRY_PASSWORD for the session: the caller's, else those of the
    bootstrap's registry, else made up (the tests' registries take whatever these are)."""
    if not (os.environ.get("REGISTRY_USERNAME") and os.environ.get("REGISTRY_PASSWORD")):
        found = dotenv_values(CREDENTIALS_FILE) if CREDENTIALS_FILE.is_file() else {}
        os.environ["REGISTRY_USERNAME"] = found.get("REGISTRY_USERNAME") or "nexus"
        os.environ["REGISTRY_PASSWORD"] = found.get("REGISTRY_PASSWORD") or uuid.uuid4().hex
    return os.environ["REGISTRY_USERNAME"], os.environ["REGISTRY_PASSWORD"]


@pytest.fixture
def registry_resource(registry_credentials):
    """The registry resource a step is handed (resources/registry.py), pointed at a test's registry
    with the session's credentials given to it: what tests substitute instead of the environment."""
    from nexus_assets.resources.registry import Registry

    def make(address: str) -> Registry:
        return Registry(address=address, username=registry_credentials[0], password=registry_credentials[1])
    return make


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory, registry_credentials):
    """A registry for the session's pipeline runs, on a free loopback port: every test gets a path
    of its own in it (unique_registry), so runs never share an image name."""
    server = RegistryServer(tmp_path_factory.mktemp("registry"), *registry_credentials)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_registry(tmp_path, registry_credentials):
    """Starts registries of the test's own (RegistryServer), with the session's credentials unless
    told otherwise; kills them afterwards."""
    started: list[RegistryServer] = []

    def make(username: str | None = None, password: str | None = None) -> RegistryServer:
        server = RegistryServer(tmp_path / f"registry-{len(started)}", username or registry_credentials[0],
                                password or registry_credentials[1])
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(kill=True)


@pytest.fixture(scope="session")
def docker_client():
    from nexus_assets.resources import docker_client as connect

    client = connect()
    yield client
    client.close()


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled sample monorepo, safe to edit."""
    target = tmp_path / "repo"
    shutil.copytree(SAMPLE_REPO, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def sample_pipeline_runs(tmp_path_factory, session_registry):
    """The README's first command twice, in-process, on a copy of the bundled sample (pushing to
    the session's registry): (settings, first summary, the PDF and package bytes after the first
    run, second summary). One pair of whole runs shared by every test that reads them; its images
    are removed at the end of the session."""
    from nexus_assets.cli.pipeline import run_pipeline
    from nexus_assets.resources import docker_client as connect

    root = tmp_path_factory.mktemp("sample")
    repo = root / "repo"
    shutil.copytree(SAMPLE_REPO, repo, symlinks=True)
    registry = f"{session_registry.address}/test-{uuid.uuid4().hex[:8]}"
    settings = Settings(repo=repo, workdir=root / "work", registry=registry, version="1.0.0", max_parallel=4)
    previous = os.environ.get("DAGSTER_HOME")
    # The instance is the workdir's own (WORKDIR/.dagster_home); DAGSTER_HOME is set only while
    # the runs last, so the tests that follow see the environment they had (a test that opens
    # this instance sets DAGSTER_HOME to settings.workdir / ".dagster_home" itself).
    os.environ["DAGSTER_HOME"] = str(settings.workdir / ".dagster_home")
    try:
        try:
            first = run_pipeline(settings)
            documents = {p.name: p.read_bytes() for p in settings.reports.glob("*") if p.suffix in (".pdf", ".gz")}
            second = run_pipeline(settings)
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_HOME", None)
            else:
                os.environ["DAGSTER_HOME"] = previous
        yield settings, first, documents, second
    finally:
        client = connect()
        remove_registry_images(client, registry)
        client.close()


@pytest.fixture
def unique_registry(session_registry) -> str:
    """A registry name no other test uses (a path in the session's registry), so image tags never
    collide between tests and pushes reach a real registry."""
    return f"{session_registry.address}/test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings_for(tmp_path: Path, unique_registry: str):
    def make(repo: Path, **overrides) -> Settings:
        values = {"repo": repo, "workdir": tmp_path / "work", "registry": unique_registry, "version": "1.0.0",
                  "max_parallel": 4}
        values.update(overrides)
        return Settings(**values)

    return make


def remove_registry_images(client, registry: str) -> None:
    """Removes every image tagged under registry/. One listing (other tests remove images
    meanwhile), and tag by tag: an image another test built from the same content (the build
    cache gives it the same id) keeps its own tags."""
    for image in client.api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(registry + "/"):
                with contextlib.suppress(Exception):
                    client.api.remove_image(tag, force=True)


@pytest.fixture
def built(tmp_path, settings_for, monkeypatch, remove_test_images):
    """A two-service repository that nexus-agent has built: (repo, settings, instance)."""
    from nexus_assets.cli.pipeline import open_instance, run_pipeline
    from nexus_assets.testrepos.synthetic import generate_monorepo

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    repo = tmp_path / "repo"
    generate_monorepo(repo, 2)
    settings = settings_for(repo)
    assert run_pipeline(settings).ok
    return repo, settings, open_instance(settings)


@pytest.fixture
def remove_test_images(docker_client, unique_registry):
    """Removes every image tagged under this test's registry name afterwards."""
    yield
    remove_registry_images(docker_client, unique_registry)


@pytest.fixture
def auth_service_container(docker_client):
    """A running container on the real engine that compose would call auth-service: (name, image)."""
    import time

    from nexus_assets.target.baseimages import load_base_image_map

    image = load_base_image_map().base
    name = f"nexus-inventory-test-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(image, ["sleep", "60"], name=name, detach=True,
                                             labels={"com.docker.compose.service": "auth-service"})
    try:
        for _ in range(50):
            container.reload()
            if container.status == "running":
                break
            time.sleep(0.1)
        assert container.status == "running", container.status
        yield name, image
    finally:
        container.remove(force=True)


def wait_until(condition, seconds: float, what: str, every: float = 0.2):
    """condition()'s first truthy value within `seconds` (asked every `every` s), else an
    AssertionError naming what was awaited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def run_finished(instance, run_id: str, timeout: float = 300):
    """The Dagster run once it has finished (whatever its status), asked every second."""
    def finished():
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None
    return wait_until(finished, timeout, f"run {run_id} to finish", every=1)
