"""The deploy stage's Dagster side: `staging_deployment` (the verified release on the staging host,
after the deployment package and the release), its blocking check `post_deploy_audit`, the drift
audit `staging_drift_audit` (the same digest-level audit, run alone: by `nexus-agent audit`, the
`staging_audit` job and its schedule), and the jobs that run them."""


from datetime import UTC, datetime
from typing import Any

import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.keys import (
    DEPLOYMENT_PACKAGE,
    DEPLOYMENT_REPORT,
    DEPLOYMENT_REPORT_FILE,
    STAGING_DEPLOYMENT,
    VERIFIED_RELEASE,
    dated,
    newest,
)
from nexus_assets.core.report_models import DeploymentReport, checked_report
from nexus_assets.core.settings import Settings
from nexus_assets.deploy.audit import Audit, collect
from nexus_assets.deploy.remote import deploy, outcome_dict
from nexus_assets.resources import NexusConfig
from nexus_assets.resources.registry import Registry
from nexus_assets.resources.staging import Session, StagingHost

DEPLOY_JOB = "staging_deploy"
AUDIT_JOB = "staging_audit"


def _record(settings: Settings, staging_part: dict[str, Any]) -> str | None:
    """Add the deployment to today's reports/deployment_report_YYYYMMDD.json (written by the
    release's deployment_report, which this asset follows); its path, or None when there is none."""
    today = settings.workdir / dated(DEPLOYMENT_REPORT_FILE, datetime.now(UTC))
    path = today if today.is_file() else newest(settings.workdir, DEPLOYMENT_REPORT_FILE)
    if path is None:
        return None
    report = read_json(path)
    report["staging"] = staging_part
    write_json(path, checked_report(DeploymentReport, report, DEPLOYMENT_REPORT_FILE))
    return str(path)


@dg.asset(
    key=STAGING_DEPLOYMENT, deps=[DEPLOYMENT_PACKAGE, VERIFIED_RELEASE, DEPLOYMENT_REPORT], group_name="deploy",
    kinds={"ssh", "docker"},
    check_specs=[dg.AssetCheckSpec("post_deploy_audit", asset=STAGING_DEPLOYMENT, blocking=True,
                                   description="Every service of the release runs, healthy, from the digest its "
                                               "manifest pins; no missing service, extra container, other image, "
                                               "changed port or env key set.")],
    description="The verified release deployed to the staging host over SSH (NEXUS_STAGING_HOST): package "
                "uploaded, checksums and signed provenance verified on the host, .env from NEXUS_STAGING_ENV_FILE, "
                "remote_deploy_runner.sh, post_deploy_audit.sh and the digest-level audit; a failed audit rolls "
                "back to the previous release and audits again.",
)
# Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
def staging_deployment(context: dg.AssetExecutionContext, nexus: NexusConfig, staging_host: StagingHost,
                       registry: Registry) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = nexus.settings()
    staging = staging_host.settings()
    outcome = deploy(settings, staging, registry, context.log.info)  # the registry: the host's docker login
    part = outcome_dict(outcome)
    report = _record(settings, part)
    audit = outcome.audit or {}
    for line in (audit.get("drifts") or []):
        context.log.warning(f"drift: {line}")
    if outcome.rolled_back_to:
        second = outcome.second_audit or {}
        context.log.error(f"{outcome.release} failed on {outcome.target} ({outcome.failure}); rolled back to "
                          f"{outcome.rolled_back_to}: the second audit "
                          f"{'passed' if second.get('passed') else 'FAILED: ' + '; '.join(second.get('drifts') or [])}")
    metadata: dict[str, Any] = {"target": outcome.target, "release": outcome.release, "previous": outcome.previous or "",
                "ok": outcome.ok, "rolled_back_to": outcome.rolled_back_to or "",
                "audit": dg.MetadataValue.json(audit), "durations": dg.MetadataValue.json(outcome.durations),
                "failure": outcome.failure or "", "pruned": outcome.pruned,
                "report": dg.MetadataValue.path(report or "")}
    description = (f"{outcome.release} on {outcome.target}: audit passed" if outcome.ok else
                   f"{outcome.release} on {outcome.target}: {outcome.failure}"
                   + (f"; rolled back to {outcome.rolled_back_to}" if outcome.rolled_back_to else ""))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(check_name="post_deploy_audit", passed=outcome.ok, description=description,
                                           metadata={"drifts": audit.get("drifts") or [],
                                                     "rolled_back_to": outcome.rolled_back_to or ""})])


def audit_host(staging_host: StagingHost) -> Audit:
    staging = staging_host.settings(need_env_file=False)
    with Session(staging) as session:
        return collect(session, staging.dir)


@dg.asset_check(asset=STAGING_DEPLOYMENT, name="staging_drift_audit",
                description="The staging host against the release last deployed there, at digest level (the "
                            "same audit as nexus-agent audit); every drift named.")
def staging_drift_audit(staging_host: StagingHost) -> dg.AssetCheckResult:
    result = audit_host(staging_host)  # nexus-agent audit prints it from the metadata
    return dg.AssetCheckResult(passed=result.ok, description=(f"{result.release}: matches the host" if result.ok else
                                                              "; ".join(result.drifts)),
                               metadata={"audit": dg.MetadataValue.json(result.as_dict()),
                                         "drifts": len(result.drifts)})


deploy_job = dg.define_asset_job(DEPLOY_JOB, selection=dg.AssetSelection.assets(STAGING_DEPLOYMENT),
                                 description="Deploy the verified release to the staging host (its settings: the "
                                             "staging_host resource's config, else NEXUS_STAGING_* ).")
audit_job = dg.define_asset_job(AUDIT_JOB, selection=dg.AssetSelection.checks(staging_drift_audit),
                                description="The drift audit of the staging host.")
audit_schedule = dg.ScheduleDefinition(name="staging_audit_schedule", job=audit_job, cron_schedule="*/15 * * * *",
                                       default_status=dg.DefaultScheduleStatus.STOPPED,
                                       description="The staging host's drift audit every 15 minutes (off by default).")
