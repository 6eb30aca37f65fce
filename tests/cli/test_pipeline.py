"""The whole graph against the real engine: cold run, nothing changed, one change, a new
service, a broken service and its fix."""

from __future__ import annotations

import json

import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.scaffold.generate import scaffold_service
from nexus_assets.testrepos.synthetic import SCAFFOLD_CONFIG, generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def small_repo(tmp_path):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    return repo


@pytest.fixture
def settings(small_repo, settings_for, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return settings_for(small_repo)


def _manifest(settings):
    return json.loads((settings.artifacts / "artifacts_manifest.json").read_text())


def test_only_stale_images_rebuild(settings, small_repo, docker_client, remove_test_images):
    cold = run_pipeline(settings)
    assert cold.ok, cold
    assert sorted(cold.built) == ["node-svc-001", "node-svc-002", "py-svc-003"]
    manifest = _manifest(settings)
    assert manifest["totals"] == {"services": 3, "with_digest": 3, "problems": 0, "tests_failed": 0, "refused": 0,
                                 "waived": 0}
    for entry in manifest["images"]:
        assert docker_client.images.get(entry["image"]).id == entry["image_id"] != entry["digest"]
        assert entry["repo_digest"] == f"{settings.registry}/nexus/{entry['service']}@{entry['digest']}"
    for name in ("discovery_parsed.json", "discrepancy_report.json"):
        assert (settings.reports / name).is_file()

    unchanged = run_pipeline(settings)
    assert unchanged.ok and unchanged.built == []

    (small_repo / "services" / "node-svc-002" / "server.js").open("a").write("\n// touched\n")
    one = run_pipeline(settings)
    assert one.ok and one.built == ["node-svc-002"]
    assert (settings.workdir / "services" / "node-svc-002" / "server.js").read_text().endswith("// touched\n")

    assert scaffold_service(small_repo, "py-svc-new", "added by hand", SCAFFOLD_CONFIG).created
    new = run_pipeline(settings)
    assert new.ok and new.built == ["py-svc-new"], "a new service is picked up without a reload by hand"
    assert _manifest(settings)["totals"]["with_digest"] == 4


def test_a_broken_service_fails_alone_and_rebuilds_once_fixed(settings, small_repo, remove_test_images):
    dockerfile = small_repo / "services" / "node-svc-001" / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good.replace("WORKDIR /app", "RUN exit 7\nWORKDIR /app", 1))
    first = run_pipeline(settings)
    assert not first.ok
    assert first.failed == ["node-svc-001"]
    assert sorted(first.built) == ["node-svc-002", "py-svc-003"]
    problems = _manifest(settings)["problems"]
    assert [p["service"] for p in problems] == ["node-svc-001"]
    # The reason names the service and the failing instruction's exit code; the log holds the build.
    assert problems[0]["status"] == "failed" and "node-svc-001" in problems[0]["reason"]
    assert "returned a non-zero code: 7" in problems[0]["reason"], problems[0]["reason"]
    assert "exit 7" in (settings.reports / "build_node-svc-001.log").read_text()

    dockerfile.write_text(good)
    fixed = run_pipeline(settings)
    assert fixed.ok and fixed.built == ["node-svc-001"]


def test_absent_base_image_is_reported_on_its_service(settings, small_repo, remove_test_images):
    dockerfile = small_repo / "services" / "py-svc-003" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("python:3.11-slim", "python:2.7-nowhere"))
    summary = run_pipeline(settings)
    assert summary.failed == ["py-svc-003"] and sorted(summary.built) == ["node-svc-001", "node-svc-002"]
    reason = _manifest(settings)["problems"][0]["reason"]
    assert "python:2.7-nowhere" in reason and "base-image map" in reason


def test_failing_unit_test_keeps_the_image_fails_its_check_and_is_retested(settings, small_repo, remove_test_images):
    test_file = next((small_repo / "services" / "py-svc-003" / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\nclass Broken(unittest.TestCase):\n    def test_fails(self):\n        self.fail('on purpose')\n")
    first = run_pipeline(settings)
    assert not first.ok and "image/py-svc-003:unit" in first.failed_gates
    assert sorted(first.built) == ["node-svc-001", "node-svc-002", "py-svc-003"], "a failing test stops no build"
    assert first.test_containers == 3, "one container per service serves its unit and integration stages"
    entry = next(i for i in _manifest(settings)["images"] if i["service"] == "py-svc-003")
    assert entry["image_id"] and entry["status"] == "tests_failed" and entry["tests"]["unit"] == "failed"
    assert entry["digest"] is None and "py-svc-003" in first.not_pushed, "an image whose tests failed is not pushed"
    log = (settings.reports / "test_results_py-svc-003_unit.log").read_text()
    assert "on purpose" in log

    # Dagster holds the image fresh (its sources did not change): nothing is rebuilt, and the
    # failed check still fails the run until the service changes or someone asks (--all).
    again = run_pipeline(settings)
    assert again.built == [] and not again.ok


def test_e2e_stack_runs_when_the_repository_defines_it_and_only_after_a_change(settings, small_repo, remove_test_images):
    (small_repo / "docker-compose.e2e.yml").write_text(
        "version: '3.8'\nservices:\n"
        "  node-svc-001:\n    image: ${REGISTRY}/nexus/node-svc-001:${VERSION}\n"
        "  py-svc-003:\n    image: ${REGISTRY}/nexus/py-svc-003:${VERSION}\n"
    )
    first = run_pipeline(settings)
    assert first.ok, first
    log = (settings.reports / "test_results_platform_e2e.log").read_text()
    assert "up -d" in log and "down" in log
    assert first.test_containers == 3 + 2  # one per service, and the e2e stack's two

    again = run_pipeline(settings)
    assert again.ok and again.built == [] and again.test_containers == 0, "nothing changed: no e2e either"


def test_editing_the_synopsis_changes_the_module_list_and_scaffolds_the_new_module(settings, small_repo, remove_test_images):
    assert run_pipeline(settings).ok
    synopsis = small_repo / "docs" / "investor_synopsis.md"
    synopsis.write_text(synopsis.read_text() + "\n## 9. Added\n\n- **extra-module** - added by the operator\n")
    after = run_pipeline(settings)
    assert after.ok and after.built == ["extra-module"]
    report = json.loads((settings.reports / "discrepancy_report.json").read_text())
    extra = next(m for m in report["modules"] if m["name"] == "extra-module")
    assert extra["scaffolded"] and "extra-module" in report["scaffolded"]
    assert (settings.workdir / "services" / "extra-module" / "openapi.json").is_file()
    assert not (small_repo / "services" / "extra-module").exists()


def test_missing_synopsis_fails_the_gate_and_nothing_else(settings, small_repo, remove_test_images):
    (small_repo / "docs" / "investor_synopsis.md").unlink()
    summary = run_pipeline(settings)
    assert not summary.ok
    # the release is refused, naming the gate
    assert summary.failed_gates == ["discrepancy_report:critical_modules_gate", "verified_release:release_gates"]
    assert summary.broken_steps == []
    assert sorted(summary.built) == ["node-svc-001", "node-svc-002", "py-svc-003"]
    report = json.loads((settings.reports / "discrepancy_report.json").read_text())
    assert not report["gate"]["passed"] and "investor_synopsis.md" in report["gate"]["message"]


def test_a_hung_test_stage_times_out_on_its_service_only(settings_for, small_repo, tmp_path, monkeypatch, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = settings_for(small_repo, test_timeout=10)
    test_file = next((small_repo / "services" / "py-svc-003" / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\nclass Hangs(unittest.TestCase):\n    def test_hangs(self):\n"
                         "        import time\n        time.sleep(600)\n")
    summary = run_pipeline(settings)
    assert summary.failed_gates == ["image/py-svc-003:unit", "verified_release:release_gates"]
    assert sorted(summary.built) == ["node-svc-001", "node-svc-002", "py-svc-003"]
    assert "FAILED: timed out after 10s" in (settings.reports / "test_results_py-svc-003_unit.log").read_text()


def test_a_new_version_retags_a_moved_tag_is_repaired_and_a_removed_image_rebuilds(settings, docker_client,
                                                                                    remove_test_images):
    """Tags tell the truth: a new --version tags the recorded images without a build; a tag
    another build moved points back at the recorded image; an image gone from the engine comes
    back alone, from the registry cache or (with the cache off) rebuilt."""
    import dataclasses

    assert run_pipeline(settings).ok
    ids = {i["service"]: i["image_id"] for i in _manifest(settings)["images"]}

    newer = dataclasses.replace(settings, version="1.2.0")
    again = run_pipeline(newer)
    assert again.ok and again.built == []
    manifest = _manifest(newer)
    assert manifest["version"] == "1.2.0"
    for entry in manifest["images"]:
        assert entry["image"].endswith(":1.2.0")
        assert docker_client.images.get(entry["image"]).id == ids[entry["service"]]

    # A new --registry: the same images under the new name, no build (issue 10, fault 2).
    mirror = dataclasses.replace(newer, registry=f"{settings.registry}/mirror")
    moved_registry = run_pipeline(mirror)
    assert moved_registry.ok and moved_registry.built == []
    for entry in _manifest(mirror)["images"]:
        assert entry["image"].startswith(f"{settings.registry}/mirror/nexus/")
        assert docker_client.images.get(entry["image"]).id == ids[entry["service"]]

    # Another build moves node-svc-001's tag onto node-svc-002's image.
    moved = f"{settings.registry}/nexus/node-svc-001"
    docker_client.images.get(ids["node-svc-002"]).tag(moved, "1.2.0")
    fixed = run_pipeline(newer)  # nothing else changed: the moved tag alone is a reason to run
    assert fixed.ok and fixed.built == [] and fixed.run_ids
    assert docker_client.images.get(f"{moved}:1.2.0").id == ids["node-svc-001"]

    # An image gone from the engine comes back, alone: from the registry cache (it passed its tests),
    # else rebuilt.
    docker_client.images.remove(ids["node-svc-002"], force=True)
    back = run_pipeline(newer)
    assert back.ok and back.pulled == ["node-svc-002"] and back.built == [] and back.test_containers == 0
    assert back.stale == {"node-svc-002": "its image is gone from the engine"}
    assert docker_client.images.get(f"{settings.registry}/nexus/node-svc-002:1.2.0").id == ids["node-svc-002"]
    docker_client.images.remove(ids["node-svc-002"], force=True)
    rebuilt = run_pipeline(dataclasses.replace(newer, registry_cache=False))
    assert rebuilt.ok and rebuilt.built == ["node-svc-002"] and rebuilt.pulled == []
