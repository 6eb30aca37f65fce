"""The registry as a shared build cache, on the real engine and a real registry with htpasswd
auth: a fresh machine (a new Dagster instance and working copy, none of the images in the
engine) pulls what another run built and tested, and builds and tests nothing; a changed
service alone builds; a cache tag holding another image is ignored and the service built; a
registry that is down leaves every build as it was, with one warning."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import replace

import dagster as dg
import pypdf
import pytest

from nexus_assets.cli.main import main
from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]
NAMES = ["node-svc-001", "node-svc-002", "py-svc-003"]


@pytest.fixture
def repo(tmp_path):
    """A 3-service monorepo in git, so the images carry the commit they were built from."""
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    git = ["git", "-C", str(repo), "-c", "user.name=nexus-test", "-c", "user.email=nexus-test@127.0.0.1"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "services"], check=True)
    return repo


def remove_images(docker_client, registry: str) -> None:
    """Every image tagged under this registry path goes from the engine (tag by tag: an identical
    image another test tagged keeps its own tags)."""
    for image in docker_client.api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(registry + "/"):
                with contextlib.suppress(Exception):
                    docker_client.api.remove_image(tag, force=True)


def fresh_machine(settings, tmp_path, monkeypatch, docker_client, name: str):
    """A new Dagster instance and working copy, and none of this registry path's images in the engine."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / f"home-{name}"))
    remove_images(docker_client, settings.registry)
    return replace(settings, workdir=tmp_path / f"work-{name}")


def manifest(settings) -> dict:
    return json.loads((settings.artifacts / "artifacts_manifest.json").read_text())


def warnings_of(settings, summary) -> list[str]:
    """The warnings the run's steps logged, as Dagster recorded them (the UI's run log)."""
    instance = open_instance(settings)
    return [record.user_message for run_id in summary.run_ids for record in instance.all_logs(run_id)
            if record.level == logging.WARNING]


def pushed_metadata(settings, name: str) -> dict:
    event = open_instance(settings).get_latest_materialization_event(dg.AssetKey(["pushed", name]))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_fresh_machine_pulls_instead_of_building_and_a_changed_or_foreign_image_builds(
        repo, settings_for, tmp_path, monkeypatch, docker_client, capfd, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home-first"))
    first_settings = settings_for(repo)
    first = run_pipeline(first_settings)
    assert first.ok and sorted(first.built) == NAMES and first.pulled == []
    built_ids = {e["service"]: e["image_id"] for e in manifest(first_settings)["images"]}
    cache_tags = {n: pushed_metadata(first_settings, n)["cache_tag"] for n in NAMES}
    assert all(tag.startswith(f"{first_settings.registry}/nexus/{n}:cache-") for n, tag in cache_tags.items())

    # Another machine, nothing changed: every image comes from the registry, no build, no test container.
    second_settings = fresh_machine(first_settings, tmp_path, monkeypatch, docker_client, "second")
    assert not [t for i in docker_client.api.images() for t in i.get("RepoTags") or []
                if t.startswith(first_settings.registry + "/")]
    capfd.readouterr()
    code = main(["run", "--repo", str(repo), "--workdir", str(second_settings.workdir), "--registry",
                 second_settings.registry, "--version", second_settings.version])
    line = capfd.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and ": 0 image(s) built, 3 pulled from the registry cache, 0 failed, 0 pushed" in line, line
    instance = open_instance(second_settings)
    for name in NAMES:
        event = instance.get_latest_materialization_event(dg.AssetKey(["image", name]))
        assert event is not None and event.asset_materialization is not None
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        assert metadata["status"] == "pulled from cache" and metadata["test_containers"] == 0
    pulled = manifest(second_settings)
    assert pulled["totals"] == {"services": 3, "with_digest": 3, "problems": 0, "tests_failed": 0, "refused": 0,
                                "waived": 0}
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    for entry in pulled["images"]:
        name = entry["service"]
        assert entry["status"] == "current" and entry["obtained"] == "pulled from cache"
        assert entry["image_id"] == built_ids[name] == docker_client.images.get(entry["image"]).id
        assert entry["digest"].startswith("sha256:") and entry["repo_digest"].endswith(entry["digest"])
        assert entry["cache"]["tag"] == cache_tags[name] and entry["cache"]["revision"] == commit
        assert entry["tests"] == {"lint": "passed", "unit": "passed", "integration": "passed"}
        unit_log = (second_settings.reports / f"test_results_{name}_unit.log").read_text()
        assert f"passed when built: from the registry cache {cache_tags[name]}" in unit_log
        assert f"built from commit {commit[:12]}" in unit_log
        # No lint ran (hadolint, py_compile and node --check each log their command line, "$ ..."):
        # its result is the one the image carries in its label, with the details of when it was built.
        lint_log = (second_settings.reports / f"test_results_{name}_lint.log").read_text()
        assert "not run again: the image comes from the registry cache " + cache_tags[name] in lint_log
        assert f"built from commit {commit[:12]}" in lint_log and "\n$ " not in lint_log, lint_log
    lint = open_instance(second_settings).event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["image", NAMES[2]]), "lint")])
    evaluation = next(iter(lint.values())).evaluation
    assert evaluation is not None and evaluation.passed
    assert evaluation.description.startswith("passed when built: hadolint: "), evaluation.description
    assert f"from the registry cache {cache_tags[NAMES[2]]}" in evaluation.description
    details = evaluation.metadata["details"].value
    assert details["from_cache"].startswith(cache_tags[NAMES[2]]) and details["python_files"] >= 1
    assert set(details["hadolint"]["levels"]) <= {"error", "warning", "info", "style"}
    assert details["tools"]["hadolint"].startswith("Haskell Dockerfile Linter")
    check = open_instance(second_settings).event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["image", NAMES[0]]), "integration")])
    evaluation = next(iter(check.values())).evaluation
    assert evaluation is not None and evaluation.passed
    assert evaluation.description.startswith(f"passed when built: from the registry cache {cache_tags[NAMES[0]]}")
    # Its signed provenance says it was pulled, naming the cache tag and the commit it was built from.
    envelope = json.loads((second_settings.artifacts / "provenance" / f"{NAMES[0]}.intoto.jsonl").read_text())
    internal = json.loads(base64.b64decode(envelope["payload"]))["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["obtained"] == "pulled from the registry cache"
    assert internal["registryCache"]["tag"] == cache_tags[NAMES[0]] and internal["registryCache"]["revision"] == commit
    # ... and so does the compliance report's images table.
    pdf = next(second_settings.reports.glob("compliance_report_*.pdf"))
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert f"built from {commit[:12]}" in re.sub(r"\s+", " ", text), text[:2000]

    # One service changes (a new version ships it: 1.0.0 is released and immutable): it alone
    # builds (and is tested); the others are left as they are.
    changed = repo / "services" / "node-svc-002" / "server.js"
    changed.write_text(changed.read_text() + "\n// changed on the second machine\n")
    third = run_pipeline(replace(second_settings, version="1.0.1"))
    assert third.ok and third.built == ["node-svc-002"] and third.pulled == [] and third.test_containers > 0

    # The cache tag of py-svc-003 now holds another service's image: ignored, py-svc-003 is built.
    foreign = docker_client.images.get(f"{second_settings.registry}/nexus/node-svc-002:1.0.0")
    repo_name, _, tag = cache_tags["py-svc-003"].rpartition(":")
    foreign.tag(repo_name, tag)
    auth = {"username": os.environ["REGISTRY_USERNAME"], "password": os.environ["REGISTRY_PASSWORD"]}
    for line in docker_client.api.push(repo_name, tag=tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.api.remove_image(f"{repo_name}:{tag}")
    # node-svc-001's cached image as an earlier nexus-assets made it, without lint's result in a
    # label (emptied: a label cannot be removed from an image): it is pulled, and linted here.
    repo_name, _, tag = cache_tags["node-svc-001"].rpartition(":")
    local = f"{second_settings.registry}/nexus/node-svc-001:1.0.0"  # the pulled image, as the engine has it
    dockerfile = f'FROM {local}\nLABEL io.nexus-assets.lint=""\n'.encode()
    older, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=cache_tags["node-svc-001"], rm=True)
    assert older.labels.get("io.nexus-assets.lint") == ""
    for line in docker_client.api.push(repo_name, tag=tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.api.remove_image(f"{repo_name}:{tag}")
    fourth_settings = replace(fresh_machine(first_settings, tmp_path, monkeypatch, docker_client, "fourth"),
                              version="1.0.2")
    fourth = run_pipeline(fourth_settings)
    assert fourth.ok and fourth.built == ["py-svc-003"] and sorted(fourth.pulled) == ["node-svc-001", "node-svc-002"]
    linted = (fourth_settings.reports / "test_results_node-svc-001_lint.log").read_text()
    assert "\n$ " in linted and "hadolint" in linted and "not run again" not in linted, linted
    assert "not run again" in (fourth_settings.reports / "test_results_node-svc-002_lint.log").read_text()
    assert "\n$ " in (fourth_settings.reports / "test_results_py-svc-003_lint.log").read_text(), "a miss lints"
    warned = warnings_of(fourth_settings, fourth)
    refused = [line for line in warned if "registry cache not used, building" in line]
    assert len(refused) == 1 and "py-svc-003" in refused[0] and "carries source hash" in refused[0], warned
    assert not any(os.environ["REGISTRY_PASSWORD"] in line for line in warned)
    # ... and its own image, tested, is back under its cache tag.
    assert pushed_metadata(fourth_settings, "py-svc-003")["cache_tagged"] is True


def test_a_registry_that_is_down_leaves_the_builds_as_they_were_with_one_warning(
        repo, make_registry, settings_for, tmp_path, monkeypatch, docker_client):
    server = make_registry()
    server.stop()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NEXUS_PUSH_ATTEMPTS", "1")  # the push fails as it always did: no need to wait for it
    settings = settings_for(repo, registry=f"{server.address}/down")
    try:
        summary = run_pipeline(settings)
    finally:
        remove_images(docker_client, settings.registry)
    assert sorted(summary.built) == NAMES and summary.pulled == [] and summary.failed == []
    warned = [line for line in warnings_of(settings, summary) if "registry cache not used" in line]
    assert len(warned) == 1 and "registry cache not used in this run" in warned[0], warned
    assert f"registry {server.address}/down cannot be reached" in warned[0] and "connection refused" in warned[0]


class StallingProxy:
    """A TCP proxy in front of the registry that forwards everything, except that a connection
    on which the engine asks (GET, its own User-Agent) for a blob receives nothing more: the pull
    stalls, as from a registry that hangs mid-download, while the cache lookup (this process
    reading the manifest and the image config) still gets its answers."""

    ENGINE_BLOB_GET = re.compile(rb"GET /v2/\S+/blobs/sha256:[0-9a-f]{64} HTTP/1\.1\r\n(?:[^\r\n]+\r\n)*?"
                                 rb"User-Agent: docker/", re.IGNORECASE)

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.stalled = threading.Event()  # set once a blob download was held
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            held = threading.Event()
            threading.Thread(target=self._pump, args=(client, upstream, held, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, held, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, held: threading.Event, asking: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if asking and self.ENGINE_BLOB_GET.search(data):
                    held.set()
                    self.stalled.set()
                if not held.is_set() or asking:
                    sink.sendall(data)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_pull_that_stalls_is_stopped_at_the_build_deadline_and_the_service_built(
        repo, settings_for, tmp_path, monkeypatch, docker_client, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home-first"))
    first_settings = settings_for(repo)
    assert run_pipeline(first_settings).ok

    # Another machine reaches the same registry through a proxy that stalls every layer download.
    host, _, path = first_settings.registry.partition("/")
    proxy = StallingProxy((host.split(":")[0], int(host.split(":")[1])))
    second = fresh_machine(first_settings, tmp_path, monkeypatch, docker_client, "second")
    second = replace(second, registry=f"127.0.0.1:{proxy.port}/{path}", build_timeout=15.0, max_parallel=3)
    started = time.monotonic()
    try:
        summary = run_pipeline(second)
    finally:
        proxy.close()
        remove_images(docker_client, second.registry)
    took = time.monotonic() - started
    assert proxy.stalled.is_set(), "no layer download went through the proxy: the test proves nothing"
    assert sorted(summary.built) == NAMES and summary.pulled == [] and summary.failed == []
    refused = [line for line in warnings_of(second, summary) if "registry cache not used, building" in line]
    assert len(refused) == 3 and all("timed out after 15s" in line for line in refused), refused
    assert took < 15 + 120, f"the run took {took:.0f}s: the stalled pulls were not stopped at their deadline"
