"""`deploy_staging` from the UI: a run of the pipeline job launched with
`resources.nexus.config.deploy_staging: true` (the launchpad shows it beside `version`) is followed
by the staging deploy job once it succeeded and its release was made, as `nexus-agent run
--deploy-staging` follows its run with the deploy. nexus-agent deploys itself and never sets it in
the run config, so no release is deployed twice."""

from __future__ import annotations

from typing import Any

import dagster as dg

from nexus_assets.core.keys import ORIGIN_TAG
from nexus_assets.core.run_tags import RELEASE_TAG

DEPLOYABLE = ("made", "already released")  # the release verdicts (core/run_tags.py) a deploy may follow


def deploy_after_release(pipeline_job: str, deploy_job: dg.UnresolvedAssetJobDefinition) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="nexus_deploy_after_release",
                          request_job=deploy_job, default_status=dg.DefaultSensorStatus.RUNNING,
                          minimum_interval_seconds=10,
                          description=f"Deploys the release to the staging host after a {pipeline_job} run whose "
                                      "run config says resources.nexus.config.deploy_staging: true and whose "
                                      "release was made.")
    def deploy_after(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        resources: dict[str, Any] = dict((run.run_config or {}).get("resources") or {})  # type: ignore[call-overload]  # run_config is a Mapping of Any
        config = (resources.get("nexus") or {}).get("config") or {}
        if run.job_name != pipeline_job or not config.get("deploy_staging"):
            return dg.SkipReason(f"run {run.run_id[:8]} did not ask for a staging deploy")
        if run.tags.get(RELEASE_TAG) not in DEPLOYABLE:
            return dg.SkipReason(f"run {run.run_id[:8]}: release {run.tags.get(RELEASE_TAG) or 'not made'}, "
                                 "nothing to deploy")
        return dg.RunRequest(run_key=f"deploy-after-{run.run_id}",
                             tags={ORIGIN_TAG: run.tags.get(ORIGIN_TAG) or "ui", "nexus/after_run": run.run_id})

    return deploy_after
