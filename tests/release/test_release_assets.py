"""verified_release and deployment_report as Dagster assets: the gates are the checks Dagster
last evaluated (a failed one is named by the release's own check and in the deployment report),
the parity gate is read from its report, and the deployment report matches its schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
from jsonschema import Draft202012Validator

from nexus_assets.core.keys import ARTIFACTS_MANIFEST, DISCREPANCY_REPORT
from nexus_assets.release.assets import deployment_report_asset, verified_release_asset
from nexus_assets.resources import NexusConfig
from nexus_assets.resources.github import GitHub
from nexus_assets.resources.registry import Registry

from .conftest import git, put_image, write_inputs

ROOT = Path(__file__).resolve().parents[2]


def run_release(settings, manifest_gate_passes: bool, parity_passes: bool = True,
                digests: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    """The release assets behind stand-ins for the manifest and the parity report, each with a
    (non-blocking) check, so the release step runs and reads their verdicts from Dagster.
    digests: the manifest's (real ones, in settings.registry: the release gate reads the registry)."""
    write_inputs(settings, digests or {"users": "a", "auth": "b"})
    report = settings.reports / "discrepancy_report.json"
    data = json.loads(report.read_text())
    data["gate"] = {"passed": parity_passes, "message": "7 critical modules missing (at most 6 allowed)"}
    report.write_text(json.dumps(data))

    @dg.asset(key=DISCREPANCY_REPORT, check_specs=[dg.AssetCheckSpec("critical_modules_gate",
                                                                     asset=DISCREPANCY_REPORT)])
    def discrepancy():
        # the check says passed: the release reads the report itself (see release.gates)
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    @dg.asset(key=ARTIFACTS_MANIFEST, deps=[DISCREPANCY_REPORT],
              check_specs=[dg.AssetCheckSpec("manifest_has_digests", asset=ARTIFACTS_MANIFEST)])
    def manifest():
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            passed=manifest_gate_passes, description="no current image for: auth")])

    built: dict = {}
    names = ["auth", "users"]
    defs = dg.Definitions(
        assets=[discrepancy, manifest, verified_release_asset(lambda: built["graph"], [ARTIFACTS_MANIFEST], names),
                deployment_report_asset(names)],
        resources={"nexus": NexusConfig(repo=str(settings.repo), workdir=str(settings.workdir),
                                        registry=settings.registry, version=settings.version),
                   # handed, not read from the environment: the session's registry, and no GitHub
                   "registry": Registry(address=settings.registry, username=os.environ["REGISTRY_USERNAME"],
                                        password=os.environ["REGISTRY_PASSWORD"]),
                   "github": GitHub(publish=False)})
    built["graph"] = defs.resolve_asset_graph()
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def deployment_report(settings) -> dict:
    [path] = settings.reports.glob("deployment_report_*.json")
    report = json.loads(path.read_text())
    schema = json.loads((ROOT / "schemas" / "deployment_report.schema.json").read_text())
    assert [e.message for e in Draft202012Validator(schema).iter_errors(report)] == []
    return report


def check(result, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_passing_gates_release_and_the_report_says_what_was_built_pushed_and_released(release_settings,
                                                                                      target_repo, unique_registry):
    settings = release_settings("1.2.0", registry=unique_registry)
    digests = {name: put_image(unique_registry, name, "1.2.0") for name in ("auth", "users")}
    result = run_release(settings, manifest_gate_passes=True, digests=digests)
    assert result.success
    assert check(result, "release_gates").passed
    assert git(target_repo, "tag", "--list") == "verified_release_v1.2.0"
    report = deployment_report(settings)
    assert report["release"]["made"] and report["release"]["tag"] == "verified_release_v1.2.0"
    assert report["run_id"] == result.run_id
    assert report["runs"] == {"artifacts_manifest": result.run_id, "verified_release": result.run_id}
    assert [b["service"] for b in report["built"]] == ["auth", "users"]
    assert [p["repo_digest"] for p in report["pushed"]] == [
        f"{unique_registry}/nexus/auth@{digests['auth']}", f"{unique_registry}/nexus/users@{digests['users']}"]
    gates = {g["name"]: g for g in report["release"]["gates"]}
    assert gates["artifacts_manifest:manifest_has_digests"]["run_id"] == result.run_id
    assert gates["discrepancy_report:critical_modules_gate"]["passed"]


def test_a_failed_gate_is_named_by_the_release_check_and_the_report(release_settings, target_repo):
    settings = release_settings("1.2.0")
    result = run_release(settings, manifest_gate_passes=False, parity_passes=False)
    evaluation = check(result, "release_gates")
    assert not evaluation.passed
    assert "artifacts_manifest:manifest_has_digests" in (evaluation.description or "")
    assert "discrepancy_report:critical_modules_gate" in (evaluation.description or "")
    assert git(target_repo, "tag", "--list") == ""
    report = deployment_report(settings)
    assert report["release"]["made"] is False
    assert report["release"]["failed_gates"] == ["artifacts_manifest:manifest_has_digests",
                                                 "discrepancy_report:critical_modules_gate"]
