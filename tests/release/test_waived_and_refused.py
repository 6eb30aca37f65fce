"""Waived and refused services through the release documents: the manifest (and its schema), its
gate, the release gates, the release notes and tag, the deployment package's compose file and the
compliance PDF's gate table, from the real assembly code."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import date

import dagster as dg
import pypdf

from nexus_assets.compliance.data import assemble
from nexus_assets.compliance.layout import render
from nexus_assets.core.report_models import checked_report
from nexus_assets.package.compose import deployment_compose
from nexus_assets.release.gates import _waive
from nexus_assets.release.manifest import Origin, ServiceRecord, assemble_manifest, unreleased
from nexus_assets.release.notes import Gate
from nexus_assets.release.report import ArtifactsManifest
from nexus_assets.release.verified import make_release

from .conftest import git, write_inputs

WAIVER = {"service": "reports", "reason": "health check probes port 9000, which it never opens (OPS-12)",
          "until": "2099-01-31", "line": 6, "committed_by": "Ops Lead", "commit": "c" * 40, "expired": False}


def _records(settings) -> list[ServiceRecord]:
    tagged = {"image_id": "sha256:" + "1" * 64, "tags": [f"{settings.registry}/nexus/users:{settings.version}"]}
    users = ServiceRecord(
        name="users", last={"tests": {"lint": "passed", "unit": "passed", "integration": "passed"}},
        failure=None, stale=None, tagged=tagged,
        pushed={"digest": "sha256:" + "d" * 64, "repo_digest": f"{settings.registry}/nexus/users@sha256:" + "d" * 64,
                "image_id": tagged["image_id"], "tag": tagged["tags"][0]})
    reports = ServiceRecord(name="reports", last=None, failure="service reports: health check failed", stale="changed",
                            tagged=None)
    billing = ServiceRecord(name="billing", last={"tests": {"lint": "passed", "unit": "failed"}}, failure=None,
                            stale=None, tagged={"image_id": "sha256:" + "2" * 64, "tags": ["r/nexus/billing:1"]})
    return [users, reports, billing]


def _manifest(settings, waivers, refused=()) -> dict:
    manifest = assemble_manifest(_records(settings), settings, None, Origin("abc", None, "run-1"), refused, waivers)
    checked_report(ArtifactsManifest, manifest, "artifacts/artifacts_manifest.json")  # the schema holds
    return manifest


def test_manifest_lists_a_waived_service_apart_and_its_gate_lets_it_go(release_settings):
    settings = release_settings()
    expired = {**WAIVER, "service": "billing", "until": "2020-01-01", "expired": True}
    manifest = _manifest(settings, [WAIVER, expired])
    images = {i["service"]: i for i in manifest["images"]}
    assert images["reports"]["status"] == "failed" and images["reports"]["waiver"] == WAIVER
    assert images["reports"]["reason"] == "waived: service reports: health check failed"
    assert manifest["waived"] == [{**WAIVER, "status": "failed", "why": "service reports: health check failed"}]
    assert "waiver" not in images["users"]
    # An expired waiver blocks again, naming the waiver and its date.
    assert images["billing"]["waiver"]["expired"] is True
    [problem] = manifest["problems"]
    assert problem["service"] == "billing"
    assert problem["reason"] == ("the waiver of billing (nexus-agent.toml line 6) expired on 2020-01-01: "
                                 "unit tests failed")
    assert unreleased(manifest) == ["billing"]  # its failed test alone would be its own check's failure
    assert (manifest["totals"]["waived"], manifest["totals"]["problems"]) == (1, 1)


def test_a_refused_service_is_in_the_manifest_as_refused_and_blocks_unless_waived(release_settings):
    settings = release_settings()
    refused = [{"service": "payments", "file": "services/payments/keys", "reason": "services/payments/keys resolves "
                "outside the repository (a link)", "compose_name": None, "folder": "services/payments"},
               {"service": "reports", "file": "services/reports/Dockerfile",
                "reason": "services/reports/Dockerfile line 3 holds a value of an .env file", "compose_name": None,
                "folder": "services/reports"}]
    manifest = _manifest(settings, [], refused)
    images = {i["service"]: i for i in manifest["images"]}
    assert images["payments"]["status"] == "refused" and images["payments"]["image"] is None
    assert images["payments"]["reason"] == ("refused: services/payments/keys resolves outside the repository "
                                            "(a link); never built nor counted")
    assert images["reports"]["status"] == "refused"  # whatever Dagster recorded for it
    assert unreleased(manifest) == ["reports", "payments"]
    assert manifest["totals"]["refused"] == 2
    waived = _manifest(settings, [{**WAIVER, "service": "payments"}], refused)
    assert unreleased(waived) == ["reports"]
    assert waived["waived"][0]["status"] == "refused"


def test_a_waived_services_failed_checks_do_not_block_the_release_and_the_notes_say_it(release_settings,
                                                                                       target_repo):
    settings = release_settings()
    manifest = write_inputs(settings, {"users": "a"})
    manifest["images"].append({"service": "reports", "status": "failed", "reason": "waived: health check failed",
                               "waiver": WAIVER, "image": None, "digest": None, "image_id": None})
    manifest["waived"] = [{**WAIVER, "status": "failed", "why": "health check failed"}]
    (settings.artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest))
    waived = {"reports": manifest["waived"][0]}
    unit = dg.AssetCheckKey(dg.AssetKey(["image", "reports"]), "unit")
    gates = [_waive(Gate("image/reports:unit", False, "not run: the image did not build"), unit, waived),
             _waive(Gate("image/users:unit", True, "passed"), dg.AssetCheckKey(dg.AssetKey(["image", "users"]), "unit"),
                    waived),
             Gate("artifacts_manifest:manifest_has_digests", True, "every released image has a registry digest")]
    assert gates[0].severity == "WAIVED" and not gates[0].blocks
    assert gates[0].detail.startswith("waived until 2099-01-31 (health check probes port 9000")
    other = _waive(Gate("image/users:unit", False, "failed"), dg.AssetCheckKey(dg.AssetKey(["image", "users"]), "unit"),
                   waived)
    assert other.blocks  # only the waived service's own checks are waived
    outcome = make_release(settings, gates, "run-1")
    assert outcome.made and git(target_repo, "tag", "--list") == "verified_release_v1.2.0"
    notes = git(target_repo, "show", "verified_release_v1.2.0:releases/v1.2.0/release_notes.md")
    assert "## Waived services" in notes
    assert ("| reports | health check failed | health check probes port 9000, which it never opens (OPS-12) | "
            "Ops Lead (cccccccccccc) | 2099-01-31 |") in notes
    assert "| image/reports:unit | waived |" in notes
    refused = make_release(settings, [replace(other, name="image/users:unit")], "run-2")
    assert not refused.made and refused.failed_gates == ["image/users:unit"]


def test_the_package_leaves_a_waived_service_out_and_says_why(release_settings, target_repo):
    settings = release_settings()
    manifest = _manifest(settings, [WAIVER])
    (target_repo / "docker-compose.yml").write_text(
        "services:\n  users:\n    build: ./services/users\n  reports:\n    build: ./services/reports\n")
    compose = deployment_compose(target_repo, None, manifest)
    assert list(compose.released) == ["users"] and "reports" not in compose.services
    assert compose.excluded["reports"] == ("WAIVED until 2099-01-31: health check probes port 9000, which it never "
                                           "opens (OPS-12) (committed by Ops Lead in cccccccccccc); not released: service reports: "
                                           "health check failed")
    assert "reports" not in compose.yaml_text("# test\n")


def test_the_compliance_pdf_gate_table_lists_the_waiver(release_settings, target_repo):
    settings = release_settings()
    write_inputs(settings, {"users": "a"})
    manifest = _manifest(settings, [WAIVER])
    (settings.artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest))
    (settings.reports / "discovery_parsed.json").write_text(json.dumps({"summary": {"services": 3}, "services": []}))
    data = assemble(settings, commit="0" * 40, lineage=[], run_id="run-pdf", today=date(2026, 12, 7))
    gates = {g.name: g for g in data.gates}
    waived = gates["waived: reports"]
    assert (waived.passed, waived.word) == (None, "WAIVED")
    assert "committed by Ops Lead in cccccccccccc; until 2099-01-31" in waived.detail
    assert "no digest: billing" in gates["artifacts manifest"].detail  # the waived one is not counted missing
    assert "reports" not in gates["artifacts manifest"].detail.split(";")[1]
    assert gates["artifacts manifest"].detail.startswith("1/2 images with a digest")
    assert gates["artifacts manifest"].detail.endswith("; 1 waived, not released")
    assert "(1 waived: reports)" in gates["tests pass"].detail and "reports" not in gates["tests pass"].detail.split("(")[0]
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pypdf.PdfReader(
        io.BytesIO(render(data, lambda s: s))).pages))
    assert "waived: reports WAIVED not released (service reports: health check failed)" in text


def test_a_waiver_of_a_module_the_parity_report_holds_critical_never_applies(release_settings, target_repo):
    from nexus_assets.release.assets import refusals_and_waivers

    settings = release_settings()
    write_inputs(settings, {"users": "a"})
    report = json.loads((settings.reports / "discrepancy_report.json").read_text())
    # payments is critical by the synopsis' (mandatory) mark (nothing configured), and its service is refused.
    report["modules"].append({"name": "payments", "critical": True, "status": "missing", "evidence": [],
                              "refused": "billing-svc: services/billing-svc/keys resolves outside the repository"})
    (settings.reports / "discrepancy_report.json").write_text(json.dumps(report))
    (target_repo / "nexus-agent.toml").write_text(
        '[parity]\ncritical = []\n[release]\nwaive = [\n'
        '  { service = "billing-svc", reason = "r", until = "2099-01-31" },\n'
        '  { service = "users", reason = "r", until = "2099-01-31" },\n'
        '  { service = "search", reason = "r", until = "2099-01-31" },\n]\n')
    _refused, waivers, problems = refusals_and_waivers(settings)
    assert [w["service"] for w in waivers] == ["search"]
    assert [(p["service"], p["status"]) for p in problems] == [("billing-svc", "waiver_refused"),
                                                               ("users", "waiver_refused")]
    assert problems[0]["reason"] == ("nexus-agent.toml line 5: waiver refused: billing-svc is the critical module "
                                     "payments, which cannot be waived")


def test_the_manifest_gate_names_a_refused_service_an_expired_waiver_and_a_refused_waiver(release_settings):
    from nexus_assets.release.assets import manifest_has_digests
    from nexus_assets.resources import NexusConfig

    settings = release_settings()
    refused = [{"service": "payments", "file": "services/payments/keys", "reason": "services/payments/keys resolves "
                "outside the repository (a link)", "compose_name": None, "folder": "services/payments"}]
    expired = {**WAIVER, "until": "2020-01-01", "expired": True}
    manifest = _manifest(settings, [expired], refused)
    manifest["problems"].append({"service": "users", "status": "waiver_refused", "reason": "nexus-agent.toml line 7: "
                                 "waiver refused: users is the critical module users, which cannot be waived"})
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    (settings.artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest))
    result = manifest_has_digests(NexusConfig(repo=str(settings.repo), workdir=str(settings.workdir),
                                              registry=settings.registry, version=settings.version))
    assert not result.passed
    assert result.metadata["missing"].value == ["reports", "payments", "users"]
    assert "reports (the waiver of reports (nexus-agent.toml line 6) expired on 2020-01-01: service reports" \
           in result.description
    assert "payments (refused: services/payments/keys resolves outside the repository (a link)" in result.description
    assert "users (nexus-agent.toml line 7: waiver refused: users is the critical module users" in result.description
