"""The README's first command, in-process: the whole pipeline on the bundled sample monorepo."""

from __future__ import annotations

import json

import pytest

from nexus_assets.cli.pipeline import run_pipeline

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET_MARKER = "DO-NOT-LEAK"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, session_registry):
    import os
    import shutil
    import uuid

    from nexus_assets.core.settings import SAMPLE_REPO, Settings
    from nexus_assets.resources import docker_client

    root = tmp_path_factory.mktemp("sample")
    repo = root / "repo"
    shutil.copytree(SAMPLE_REPO, repo, symlinks=True)
    registry = f"{session_registry.address}/test-{uuid.uuid4().hex[:8]}"
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    settings = Settings(repo=repo, workdir=root / "work", registry=registry, version="1.0.0", max_parallel=4)
    try:
        yield settings, run_pipeline(settings), run_pipeline(settings)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
        client = docker_client()
        for image in client.images.list():
            if any(t.startswith(registry + "/") for t in image.tags):
                client.images.remove(image.id, force=True)
        client.close()


def test_sample_run_passes_every_gate_and_builds_every_service(sample_run, docker_client):
    settings, first, _ = sample_run
    assert first.ok, first
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    services = sorted(p.name for p in (settings.workdir / "services").iterdir() if (p / "Dockerfile").exists())
    assert sorted(i["service"] for i in manifest["images"]) == services
    for entry in manifest["images"]:
        assert docker_client.images.get(entry["image"]).id == entry["image_id"]
        assert entry["digest"].startswith("sha256:") and entry["repo_digest"].endswith(entry["digest"])
        assert entry["substituted_bases"], "every sample base image is a recorded substitution"


def test_second_sample_run_builds_and_tests_nothing(sample_run):
    _, _, second = sample_run
    assert second.ok and second.built == [] and second.test_containers == 0


def test_sample_report_names_the_missing_modules_and_scaffolds_them(sample_run):
    settings, _, _ = sample_run
    report = json.loads((settings.reports / "discrepancy_report.json").read_text())
    modules = {m["name"]: m for m in report["modules"]}
    assert len(modules) == 47
    for critical in ("puabo-blac-financing", "ott-mini", "nexus-stream"):
        assert modules[critical]["scaffolded"], critical
        assert (settings.workdir / "services" / critical / "Dockerfile").is_file()
    assert modules["auth"]["status"] == "present"
    assert "legacy-reports" in {s["name"] for s in report["non_canonical_services"]}
    assert report["gate"]["passed"]
    assert not (settings.repo / "services" / "ott-mini").exists(), "the sample stays pristine"


def test_no_secret_value_in_any_output(sample_run):
    settings, _, _ = sample_run
    for folder in (settings.reports, settings.artifacts):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SECRET_MARKER not in path.read_text(errors="replace"), path
