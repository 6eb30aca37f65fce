"""The README's first command, in-process: the whole pipeline on the bundled sample monorepo."""

from __future__ import annotations

import json

import pytest

# Two whole pipeline runs (the shared fixture) happen in the first test that asks for them.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

SECRET_MARKER = "DO-NOT-LEAK"


@pytest.fixture(scope="module")
def sample_run(sample_pipeline_runs):
    """(settings, first run, second run) of the README's first command (tests/conftest.py)."""
    settings, first, _, second = sample_pipeline_runs
    return settings, first, second


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
