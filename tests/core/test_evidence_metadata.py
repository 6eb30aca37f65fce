"""The evidence an auditor opens from the UI: URL entries beside the path entries, a failing
check's log tail inline, and per-service rows on the manifest, PDF and package, as Dagster
records them (materialized in-process, read back from the instance)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.core.keys import ARTIFACTS_MANIFEST, image_key
from nexus_assets.core.metadata import EvidenceLinks, log_tail, service_rows, service_table_metadata
from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.definitions import build_definitions
from nexus_assets.images.outcome import check_result
from nexus_assets.testing.stage import StageResult

BASE = "http://127.0.0.1:3999"


def _manifest(work: Path) -> dict:
    return {"images": [
        {"service": "users", "status": "current", "image": "r/nexus/users:1.0.0", "digest": "sha256:" + "a" * 64,
         "tests": {"lint": "passed", "unit": "passed", "integration": "passed"},
         "sbom": {"path": "sbom/users.cdx.json", "sha256": "1"},
         "provenance": {"path": "provenance/users.intoto.jsonl", "sha256": "2"},
         "build_log": str(work / "reports" / "build_users.log"), "reason": None},
        {"service": "legacy", "status": "tests_failed", "image": "r/nexus/legacy:1.0.0", "digest": None,
         "tests": {"lint": "passed", "unit": "failed"}, "sbom": None, "provenance": None, "build_log": None,
         "reason": "waived: tests failed"},
        {"service": "auth", "status": "failed", "image": None, "digest": None, "tests": None, "sbom": None,
         "provenance": None, "build_log": None, "reason": "docker build failed"}],
        "waived": [{"service": "legacy", "reason": "OPS-12"}]}


def test_rows_link_each_services_evidence_and_say_whether_it_ships(tmp_path):
    links = EvidenceLinks(tmp_path, BASE)
    rows = {r["service"]: r for r in service_rows(_manifest(tmp_path), links, packaged={"users"})}
    assert rows["users"] == {"service": "users", "status": "current", "image": "r/nexus/users:1.0.0",
                             "digest": "sha256:" + "a" * 64, "tests": "lint passed, unit passed, integration passed",
                             "sbom": f"{BASE}/artifacts/sbom/users.cdx.json",
                             "provenance": f"{BASE}/artifacts/provenance/users.intoto.jsonl",
                             "build_log": f"{BASE}/reports/build_users.log", "released": "in the package"}
    assert rows["legacy"]["released"] == "waived: OPS-12" and rows["legacy"]["sbom"] == "none"
    assert rows["auth"]["released"] == "not in the package: docker build failed"
    before = {r["service"]: r["released"] for r in service_rows(_manifest(tmp_path), links)}  # no package yet
    assert before == {"users": "released", "legacy": "waived: OPS-12", "auth": "not released: docker build failed"}
    meta = service_table_metadata(_manifest(tmp_path), links)
    assert [r.data["service"] for r in meta["services"].value.records] == ["users", "legacy", "auth"]
    assert f"[SBOM]({BASE}/artifacts/sbom/users.cdx.json)" in meta["evidence"].value


def test_a_failing_check_shows_its_log_tail_and_link(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    log = reports / "test_results_users_unit.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "AssertionError: expected 200, got 500\n")
    links = EvidenceLinks(tmp_path, BASE)
    failed = check_result(StageResult("users", "unit", False, False, "1 test failed", 1.5, str(log),
                                      containers=1), links=links)
    assert failed.metadata["log_url"].value == f"{BASE}/reports/test_results_users_unit.log"
    assert failed.metadata["log"].value == str(log)  # the path entry stays
    tail = failed.metadata["log_tail"].value
    assert "AssertionError: expected 200, got 500" in tail and "line 99" in tail and "line 60\n" not in tail
    assert tail.count("\n") < 40
    passed = check_result(StageResult("users", "lint", True, False, "ok", 0.1, str(log)), links=links)
    assert "log_tail" not in passed.metadata and "log_url" in passed.metadata
    assert "unreadable" not in log_tail(log).value
    assert "not readable" in log_tail(tmp_path / "gone.log").value


def test_the_manifest_records_its_url_and_rows_in_the_instance(tmp_path):
    """The manifest asset of the real definitions, materialized alone in-process on a fresh
    instance (nothing built yet): its metadata carries the file's URL under NEXUS_EVIDENCE_URL
    and one row per sample service."""
    work = tmp_path / "w"
    settings = Settings(repo=SAMPLE_REPO, workdir=work, registry="r", version="1.0.0", max_parallel=2,
                        evidence_url=BASE + "/")
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[ARTIFACTS_MANIFEST], raise_on_error=False)
    # the manifest is made; its blocking gate fails, as nothing was built: that is not what is checked here
    assert [e.check_name for e in result.get_asset_check_evaluations() if not e.passed] == ["manifest_has_digests"]
    event = instance.get_latest_materialization_event(ARTIFACTS_MANIFEST)
    assert event is not None and event.asset_materialization is not None
    meta = event.asset_materialization.metadata
    assert meta["url"] == dg.MetadataValue.url(f"{BASE}/artifacts/artifacts_manifest.json")
    assert isinstance(meta["path"], dg.PathMetadataValue)
    services = sorted(p.name for p in (SAMPLE_REPO / "services").iterdir() if (p / "Dockerfile").is_file())
    table = meta["services"]
    assert isinstance(table, dg.TableMetadataValue)
    assert sorted(r.data["service"] for r in table.records) == services
    assert {r.data["released"].split(":")[0] for r in table.records} == {"not released"}
    assert instance.get_latest_materialization_event(image_key("users")) is None  # nothing else was made


def test_the_image_shows_its_commit_tree_hash_bases_and_links(tmp_path):
    """An image's own entries: the commit and its time (not buried in the labels), the tree hash
    apart from it, what stood in for a substituted base, the build log's URL; the integration
    check that ran in the unit stage's container says so, agreeing with the image's count."""
    from nexus_assets.images.outcome import success_event
    from nexus_assets.target.services import Service

    reports = tmp_path / "reports"
    reports.mkdir()
    log = reports / "build_users.log"
    log.write_text("built\n")
    service = Service(name="users", path=tmp_path / "services" / "users", dockerfile=None, language="python")
    unit = StageResult("users", "unit", True, False, "passed", 2.0, str(reports / "u.log"), containers=1)
    integration = StageResult("users", "integration", True, False, "passed", 1.0, str(reports / "i.log"),
                              details={"shared_container": True}, containers=0)
    built = {"image_id": "sha256:" + "b" * 64, "tags": ["r/nexus/users:1.0.0"], "size_bytes": 1, "seconds": 3.0,
             "source_hash": "f" * 64, "tree_hash": "c" * 64, "build_log": str(log),
             "labels": {"org.opencontainers.image.revision": "d" * 40,
                        "org.opencontainers.image.created": "2026-11-01T10:00:00Z",
                        "org.opencontainers.image.source": "https://example.org/nexus-cos.git"},
             "base_images": [{"requested": "python:3.11-slim", "image_id": "sha256:" + "e" * 64, "substituted": True,
                              "substitute": "nexus-base/bookworm:2", "provides": "python3.11, pip"},
                             {"requested": "node:20", "image_id": "sha256:" + "1" * 64, "substituted": False}]}
    event = success_event(service, {"built": built, "stages": [unit, integration]},
                          links=EvidenceLinks(tmp_path, BASE))
    meta = event.metadata
    assert meta["source_commit"] == "d" * 40 and meta["source_commit_time"] == "2026-11-01T10:00:00Z"
    assert meta["tree_hash"] == "c" * 64 and meta["source_repository"] == "https://example.org/nexus-cos.git"
    assert meta["bases_used"] == ("python:3.11-slim (substituted: nexus-base/bookworm:2 providing python3.11, pip); "
                                  "node:20 (sha256:111111111111)")
    assert meta["build_log_url"].value == f"{BASE}/reports/build_users.log"
    checks = {c.check_name: c.metadata for c in event.check_results}
    assert meta["test_containers"] == 1
    assert checks["integration"]["containers"].value == 1 and checks["integration"]["containers_started"].value == 0
    assert checks["unit"]["containers"].value == 1


@pytest.mark.docker
def test_a_check_executed_again_alone_keeps_its_log_seconds_and_containers(tmp_path):
    """The UI's "Execute" on one check (here lint, which starts no container; the step pings the
    engine): the check's record carries its log path and URL, seconds and containers."""
    settings = Settings(repo=SAMPLE_REPO, workdir=tmp_path / "w", registry="r", version="1.0.0", max_parallel=2,
                        evidence_url=BASE)
    defs = build_definitions(settings)
    check = dg.AssetCheckKey(image_key("users"), "lint")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(), asset_check_selection={check})
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    meta = evaluation.metadata
    assert meta["log_url"].value == f"{BASE}/reports/test_results_users_lint.log"
    assert Path(meta["log"].value).is_file() and meta["seconds"].value >= 0 and meta["containers"].value == 0
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    assert record.event is not None
