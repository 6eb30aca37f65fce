"""The release group: the artifacts manifest and its gate (every released image has a registry
digest), the verified release and the deployment report."""

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.hashing import json_version
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST,
    ARTIFACTS_MANIFEST_FILE,
    ATTESTATIONS,
    DEPLOYMENT_REPORT,
    DISCREPANCY_REPORT_FILE,
    E2E_TESTS,
    PUSHED_IMAGES,
    RELEASE_KEYS,
    STAGING_DEPLOYMENT,
    TAGGED_IMAGES,
    VERIFIED_RELEASE,
    VERIFIED_RELEASE_FILE,
    image_key,
    pushed_key,
)
from nexus_assets.core.lineage import AssetRecords, latest_metadata, latest_observations, plain, stale_images
from nexus_assets.core.metadata import EvidenceLinks, report_metadata, service_table_metadata
from nexus_assets.core.one_step import Check, Part
from nexus_assets.core.report_models import checked_report
from nexus_assets.core.run_tags import RELEASE_TAG
from nexus_assets.core.settings import Settings
from nexus_assets.policy.waivers import configured_critical, critical_waiver, read_waivers
from nexus_assets.release.deployment import build_report, report_path
from nexus_assets.release.gates import release_gates
from nexus_assets.release.manifest import Origin, ServiceRecord, assemble_manifest, unreleased
from nexus_assets.release.notes import Gate
from nexus_assets.release.registry_gate import registry_gate
from nexus_assets.release.report import ArtifactsManifest
from nexus_assets.release.verified import make_release
from nexus_assets.resources import GitRepo, NexusConfig
from nexus_assets.target.secrets import repo_secrets
from nexus_assets.target.services import build_services, refused_services

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph
from nexus_assets.resources.github import GitHub
from nexus_assets.resources.registry import Registry


def _stamp(record: Any) -> str:
    return datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")


def _last(known: AssetRecords, keys: list[dg.AssetKey]) -> dict[dg.AssetKey,
          tuple[int, dict[str, Any], dict[str, Any]]]:
    """{key: (storage id, plain metadata, {run_id, at})} of each key's newest materialization (one query)."""
    return {key: (last.storage_id, last.metadata, {"run_id": last.run_id, "at": _stamp(last)})
            for key, last in known.latest(keys).items()}


def _newer_observation(observed: dict[dg.AssetKey, dg.EventLogRecord], key: dg.AssetKey, after: int,
                       status: str) -> str | None:
    """The reason of key's newest observation (observed: latest_observations) when it has this
    status and was made after storage id `after`."""
    record = observed.get(key)
    if record is None or record.storage_id <= after:
        return None

    observation = record.event_log_entry.asset_observation
    meta = plain(observation.metadata if observation is not None else {})
    return meta.get("reason") if meta.get("status") == status else None


def service_records(context: dg.AssetExecutionContext, graph: "BaseAssetGraph[Any]",
                    names: list[str]) -> list[ServiceRecord]:
    """Dagster's records for every service image and its push, read in one place for the manifest."""
    instance = context.instance
    tagged = latest_metadata(instance, TAGGED_IMAGES)
    rows = tagged.get("images") or {}
    attested = latest_metadata(instance, ATTESTATIONS).get("services") or {}
    known = AssetRecords(instance)  # one query per kind of key, shared with the staleness verdict
    stale = stale_images(graph, instance, [image_key(n) for n in names], known)
    images = _last(known, [image_key(n) for n in names])
    pushes = _last(known, [pushed_key(n) for n in names])
    observed = latest_observations(instance, [k for n in names for k in (image_key(n), pushed_key(n))])
    records = []
    for name in names:
        storage_id, metadata, image_event = images.get(image_key(name), (-1, None, {}))
        push_id, pushed, push_event = pushes.get(pushed_key(name), (-1, None, {}))
        records.append(ServiceRecord(
            name=name, last=metadata, stale=stale.get(image_key(name)), tagged=rows.get(name),
            # a build that failed after the last image was made: its failure observation is newer
            failure=_newer_observation(observed, image_key(name), storage_id, "failed"),
            pushed=pushed, attest=attested.get(name),
            not_pushed=_newer_observation(observed, pushed_key(name), push_id, "not_pushed"),
            events={"built_at": image_event.get("at"), "image_run_id": image_event.get("run_id"),
                    "pushed_at": push_event.get("at"), "push_run_id": push_event.get("run_id")}))
    return records


def _critical_evidence(settings: Settings) -> dict[str, str]:
    """{name: critical module} of every name the parity report gives as a critical module's
    evidence (the synopsis' mandatory marks included), and the module names themselves."""
    path = settings.workdir / DISCREPANCY_REPORT_FILE
    report = read_json(path) if path.is_file() else {}
    found: dict[str, str] = {}
    for module in report.get("modules") or []:
        if module.get("critical"):
            found[module["name"]] = module["name"]
            for item in module.get("evidence") or []:
                for name in (item.get("name"), item.get("compose_name")):
                    if name:
                        found[str(name)] = module["name"]
            if module.get("refused"):  # "SERVICE: why": a refused service is no evidence, but is the module's
                found[str(module["refused"]).split(":", 1)[0]] = module["name"]
    return found


def refusals_and_waivers(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(refused services, waivers that may apply, problems) for the manifest: a waiver of a
    critical module (by the parity report's evidence) never applies, and is a problem naming it."""
    refused = [r.record() for r in refused_services(settings.repo, settings.compose_file,
                                                    repo_secrets(settings.repo))]
    critical, configured = _critical_evidence(settings), configured_critical(settings.repo)
    waivers, problems = [], []
    for waiver in read_waivers(settings.repo):
        module = critical.get(waiver.service) or critical_waiver(waiver, (), configured)
        if module is not None:
            problems.append({"service": waiver.service, "status": "waiver_refused",
                             "reason": f"{waiver.where()}: waiver refused: {waiver.service} is the critical module "
                                       f"{module}, which cannot be waived"})
            continue
        waivers.append(waiver.record(date.today()))
    return refused, waivers, problems


MANIFEST_GATE = dg.AssetCheckSpec("manifest_has_digests", asset=ARTIFACTS_MANIFEST, blocking=True,
                                  description="Guide gate: the manifest exists and every released image has a "
                                              "registry digest.")


def artifacts_manifest_part(service_names: list[str], asset_graph: "Callable[[], BaseAssetGraph[Any]]") -> Part:
    """artifacts_manifest and its gate, one part of the release documents' step (core/one_step.py)."""
    spec = dg.AssetSpec(
        key=ARTIFACTS_MANIFEST,
        # each service's provenance reaches it through attestations (the auditor's chain)
        deps=[TAGGED_IMAGES, PUSHED_IMAGES, E2E_TESTS, ATTESTATIONS],
        group_name="release", kinds={"json"},
        description="artifacts/artifacts_manifest.json: the current image of every service, its local image id, "
                    "registry digest and tags, its sources, base images (and substitutions), test results and "
                    "Dagster runs, read from Dagster's records. Schema: schemas/artifacts_manifest.schema.json.",
    )

    def artifacts_manifest(context: dg.AssetExecutionContext) -> dg.MaterializeResult[Any]:
        nexus: NexusConfig = context.resources.nexus
        git: GitRepo = context.resources.git
        settings = nexus.settings()
        with nexus.hold_workdir(context):  # one writer per working copy
            e2e = latest_metadata(context.instance, E2E_TESTS) or None
            origin = Origin(git_commit=git.revision(), source_repository=git.remote_url(), run_id=context.run.run_id)
            refused, waivers, refused_waivers = refusals_and_waivers(settings)
            manifest = assemble_manifest(service_records(context, asset_graph(), service_names), settings,
                                         {k: e2e.get(k) for k in ("passed", "skipped", "seconds")} if e2e else None,
                                         origin, refused, waivers)
            manifest["problems"] += refused_waivers
            manifest["totals"]["problems"] = len(manifest["problems"])
            path = settings.workdir / ARTIFACTS_MANIFEST_FILE
            write_json(path, checked_report(ArtifactsManifest, manifest, ARTIFACTS_MANIFEST_FILE))
            totals = manifest["totals"]
            context.log.info(f"manifest {path}: {totals['with_digest']}/{totals['services']} services with a "
                             f"registry digest")
            links = EvidenceLinks.of(settings)
            return dg.MaterializeResult(
                asset_key=ARTIFACTS_MANIFEST, data_version=dg.DataVersion(json_version(manifest)),
                metadata={**report_metadata(path, links), **totals, "problems": dg.MetadataValue.json(manifest["problems"]),
                          **service_table_metadata(manifest, links)},
            )

    return Part(spec, artifacts_manifest,
                (Check(MANIFEST_GATE, lambda context: manifest_has_digests(context.resources.nexus)),))


def manifest_has_digests(nexus: NexusConfig) -> dg.AssetCheckResult:
    """The manifest's gate (MANIFEST_GATE)."""
    path = nexus.settings().workdir / ARTIFACTS_MANIFEST_FILE
    if not path.is_file():
        return dg.AssetCheckResult(asset_key=ARTIFACTS_MANIFEST, check_name=MANIFEST_GATE.name, passed=False,
                                   description=f"{path} does not exist")
    manifest = read_json(path)
    missing = unreleased(manifest)
    # A waiver refused (a critical module) is a problem of its own: the service is not released either.
    missing += [p["service"] for p in manifest["problems"] if p["status"] == "waiver_refused" and p["service"] not in missing]
    totals = manifest["totals"]
    passed = totals["with_digest"] > 0 and not missing
    reasons: dict[str, str] = {}
    for p in manifest["problems"]:
        reasons[p["service"]] = f"{reasons[p['service']]}; {p['reason']}" if p["service"] in reasons else p["reason"]
    return dg.AssetCheckResult(
        asset_key=ARTIFACTS_MANIFEST, check_name=MANIFEST_GATE.name,
        passed=passed,
        description="every released image has a registry digest" if passed else
        "no registry digest for: " + ("; ".join(f"{n} ({reasons.get(n, 'no image')})" for n in missing[:5])
                                      + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                                      if missing else "any service"),
        metadata={"with_digest": totals["with_digest"], "services": totals["services"], "missing": missing,
                  "waived": sorted(w["service"] for w in manifest.get("waived") or [])},
    )


def release_verdict(outcome: Any) -> str:
    """made | already released | deferred | refused: the run tag nexus/release."""
    if outcome.deferred_for:
        return "deferred"
    if outcome.made:
        return "already released" if outcome.already_released else "made"
    return "refused"


def _gate_rows(gates: list[Gate]) -> list[dict[str, Any]]:
    return [{"name": g.name, "passed": g.passed, "blocking": g.severity not in ("WARN", "WAIVED"),
             "detail": g.detail, "run_id": g.run_id} for g in gates]


def verified_release_asset(asset_graph: "Callable[[], BaseAssetGraph[Any]]", deps: list[dg.AssetKey],
                           service_names: list[str]) -> dg.AssetsDefinition:
    """verified_release: the tag, branch, notes and publication of settings.version, made only
    when every blocking gate passed; its check names the gates that failed. Services that
    scaffolding made in this run, which the loaded graph cannot know, defer the release to the
    run that builds them (nexus-agent launches it at once)."""

    @dg.asset(
        key=VERIFIED_RELEASE, deps=deps, group_name="release", kinds={"git", "github"},
        check_specs=[dg.AssetCheckSpec("release_gates", asset=VERIFIED_RELEASE,
                                       description="Every blocking gate passed and the release was made.")],
        description="The verified release: annotated tag verified_release_vX.Y.Z and branch verified_release in "
                    "the target repository, release notes, WORKDIR/releases/vX.Y.Z/, and a GitHub Release when "
                    "GITHUB_TOKEN and GITHUB_REPOSITORY are set. Refused, naming them, when a blocking gate failed.",
    )
    # Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
    def verified_release(context: dg.AssetExecutionContext, nexus: NexusConfig, registry: Registry,
                         github: GitHub) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings = nexus.settings()
        with nexus.hold_workdir(context):  # one writer per working copy
            # the staging deploy follows the release: its checks are not the release's gates
            gates = release_gates(context.instance, asset_graph(), settings, exclude=(*RELEASE_KEYS, STAGING_DEPLOYMENT))
            unknown = sorted({s.name for s in build_services(settings)} - set(service_names))
            moved = [] if unknown or any(g.blocks for g in gates) else registry_gate(settings, registry)
            outcome = make_release(settings, gates, context.run.run_id, deferred_for=unknown,
                                   registry_problems=moved, github=github.target())
            record = {**asdict(outcome), "notes": None, "gates": _gate_rows(gates)}
            write_json(settings.workdir / VERIFIED_RELEASE_FILE, record)
            for line in outcome.messages:
                context.log.info(line)
            # the run says what became of its release (a deferred or refused one is no failed step)
            context.instance.add_run_tags(context.run.run_id, {RELEASE_TAG: release_verdict(outcome)})
            if outcome.notes and outcome.folder:
                context.log.info(f"release notes: {Path(outcome.folder) / 'release_notes.md'}")
            metadata = {"version": outcome.version, "tag": outcome.tag, "made": outcome.made,
                        "already_released": outcome.already_released, "failed_gates": outcome.failed_gates,
                        "source_commit": outcome.source_commit or "", "release_commit": outcome.release_commit or "",
                        "changed_services": outcome.changed_services, "attachments": outcome.attachments,
                        "github_url": (outcome.github or {}).get("url", ""), "folder": outcome.folder or ""}
            verdict = ("released" if not outcome.already_released else "already released") if outcome.made else \
                outcome.messages[0]
            return dg.MaterializeResult(
                metadata={**metadata, "record": dg.MetadataValue.path(str(settings.workdir / VERIFIED_RELEASE_FILE))},
                check_results=[dg.AssetCheckResult(
                    check_name="release_gates", passed=not outcome.failed_gates and not outcome.problems,
                    description=f"{outcome.tag}: {verdict if not outcome.problems else outcome.messages[-1]}",
                    metadata={"failed_gates": outcome.failed_gates, "gates": len(gates)})],
            )

    return verified_release


def deployment_report_asset(service_names: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        key=DEPLOYMENT_REPORT, deps=[VERIFIED_RELEASE, ARTIFACTS_MANIFEST], group_name="release", kinds={"json"},
        description="reports/deployment_report_YYYYMMDD.json: what was built, pushed and released, with the "
                    "Dagster run of each image, the manifest and the release.",
    )
    # Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
    def deployment_report(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings = nexus.settings()
        with nexus.hold_workdir(context):
            manifest = read_json(settings.workdir / ARTIFACTS_MANIFEST_FILE)
            record_path = settings.workdir / VERIFIED_RELEASE_FILE
            record = read_json(record_path) if record_path.is_file() else None
            keys = [image_key(n) for n in service_names] + [ARTIFACTS_MANIFEST, VERIFIED_RELEASE]
            runs: dict[str, str] = {}
            for key, last in AssetRecords(context.instance).latest(keys).items():  # one query for every image
                runs[key.to_user_string()] = last.run_id
            image_runs = {n: runs.pop(image_key(n).to_user_string()) for n in service_names
                          if image_key(n).to_user_string() in runs}
            report = build_report(settings, manifest, record, context.run.run_id, image_runs, runs)
            path = report_path(settings)
            write_json(path, report)
            release = report["release"] or {}
            context.log.info(f"deployment report {path}: {len(report['built'])} built, {len(report['pushed'])} pushed, "
                             f"release {'made' if release.get('made') else 'not made'}")
            return dg.MaterializeResult(metadata={**report_metadata(path, EvidenceLinks.of(settings)),
                                                  "built": len(report["built"]),
                                                  "pushed": len(report["pushed"]),
                                                  "released": bool(release.get("made"))})

    return deployment_report
