"""Issue 8 on the real engine: a checkout shaped like the real platform (compose names that
differ from folders, nested services, a context outside services/, a Dockerfile outside its
context, build args only compose supplies, a library, infrastructure, a second compose file,
real packages installed while building, ports, variables and healthchecks only compose sets, a
context at the repository root) builds every sound service from compose and tests it as compose
runs it, the broken one fails alone naming its Dockerfile line, the one whose health check probes
a port it never opens fails its integration alone naming the port, and a second run builds nothing."""

from __future__ import annotations

import json

import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.testrepos.realistic import generate_realistic_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_realistic_checkout_builds_and_tests_every_sound_service_from_compose(
        tmp_path, settings_for, monkeypatch, docker_client, remove_test_images):
    real = generate_realistic_monorepo(tmp_path / "repo")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = settings_for(real.root)

    first = run_pipeline(settings)
    assert sorted(first.built) == real.builds, first
    assert first.failed == [real.broken]
    # Its checks fail, and the manifest's gate names it; the service whose health check probes a
    # port it never opens fails its integration alone, naming the port; nothing else fails.
    assert sorted(first.failed_gates) == ["artifacts_manifest:manifest_has_digests",
                                          *(f"image/{real.broken}:{s}" for s in ("integration", "lint", "unit")),
                                          f"image/{real.unhealthy}:integration"]
    unhealthy_log = (settings.reports / f"test_results_{real.unhealthy}_integration.log").read_text()
    assert f"probes port {real.health_port}, where nothing listens" in unhealthy_log
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    problems = {p["service"]: p for p in manifest["problems"]}
    assert set(problems) <= {real.broken, real.unhealthy} and real.broken in problems, problems
    problem = problems[real.broken]
    assert problem["service"] == real.broken and problem["status"] == "failed"
    assert f"line {real.broken_line}" in problem["reason"] and "COPPY" in problem["reason"], problem["reason"]
    entries = {e["service"]: e for e in manifest["images"]}
    assert entries[real.unhealthy]["tests"]["integration"] == "failed" and not entries[real.unhealthy]["digest"]
    for name in real.sound:  # the services that run only as compose runs them among them
        assert entries[name]["status"] == "current", entries[name]
        assert entries[name]["tests"] == {"lint": "passed", "unit": "passed", "integration": "passed"}, name
        assert entries[name]["repo_digest"] == f"{settings.registry}/nexus/{name}@{entries[name]['digest']}", name
    # The args compose supplies reached the build: the shared Dockerfile (outside the context)
    # bakes SERVICE_PORT into the image's PORT, and the image is named by the compose service.
    billing = docker_client.images.get(entries["billing"]["image_id"])
    assert f"{settings.registry}/nexus/billing:{settings.version}" in billing.tags
    port = real.root.joinpath("docker-compose.yml").read_text().split("BILLING_PORT:-", 1)[1].split("}", 1)[0]
    assert f"PORT={port}" in billing.attrs["Config"]["Env"]
    assert {"web", "auth-service", "thumbnailer"} <= set(entries)
    # Its integration test ran beside the postgres and redis compose says it depends on, and
    # the manifest says what they were (here substitutes from Debian packages, or the real ones).
    assert [i["name"] for i in entries["auth-service"]["infrastructure"]] == ["postgres", "redis"]
    assert all(i["substituted"] == (i["provides"] is not None) for i in entries["auth-service"]["infrastructure"])
    assert entries["web"]["infrastructure"] == []
    assert "metrics-exporter" not in entries and "shared-lib" not in entries

    second = run_pipeline(settings)
    assert second.built == [], second
