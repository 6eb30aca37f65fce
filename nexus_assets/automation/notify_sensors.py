"""Notifications for the runs that do not notify themselves: "Materialize" in the UI's asset graph
runs Dagster's implicit asset job, which has none of nexus_pipeline's run config and so no notify
logger (automation/notify.py). Where a daemon runs (`dagster dev` starts one), these run-status
sensors send the same messages and step summary from the run's record in the instance; runs of
nexus_pipeline are left to their own logger, so no run is notified twice (and a sensor's cursor
sees each run's status once)."""

from __future__ import annotations

import dagster as dg

from nexus_assets.automation.notify import Webhook, finish, gate_text, start_text
from nexus_assets.automation.summary import RunFacts
from nexus_assets.core.run_tags import run_tags
from nexus_assets.core.settings import Settings

_ENDS = {dg.DagsterRunStatus.SUCCESS: "succeeded", dg.DagsterRunStatus.FAILURE: "failed",
         dg.DagsterRunStatus.CANCELED: "canceled"}


def notify_sensors(settings: Settings, own_job: str) -> list[dg.RunStatusSensorDefinition]:
    """A sensor for the start and one per end of the runs of jobs other than own_job."""

    def facts(context: dg.RunStatusSensorContext) -> RunFacts:
        run = context.dagster_run
        stats = context.instance.get_run_stats(run.run_id)
        return RunFacts(run_id=run.run_id, job_name=run.job_name, started=stats.start_time or stats.launch_time or 0.0,
                        origin=run.tags.get("nexus/origin") or "ui")

    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.STARTED, name="nexus_notify_started",
                          default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=10,
                          description="Slack (SLACK_WEBHOOK_URL) when a run of another job than "
                                      f"{own_job} starts (the UI's Materialize); {own_job} notifies itself.")
    def started(context: dg.RunStatusSensorContext) -> None:
        run = context.dagster_run
        if run.job_name != own_job:  # the UI's Materialize: tagged as nexus_pipeline's runs are (core/run_tags.py)
            missing = {k: v for k, v in run_tags(settings.version).items() if k not in run.tags}
            if missing:
                context.instance.add_run_tags(run.run_id, missing)
        webhook = Webhook.from_env()
        if context.dagster_run.job_name != own_job and webhook:
            webhook.post(start_text(facts(context), settings))
            webhook.wait()

    def ended(status: dg.DagsterRunStatus) -> dg.RunStatusSensorDefinition:
        @dg.run_status_sensor(run_status=status, name=f"nexus_notify_{status.value.lower()}",
                              default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=10,
                              description=f"Slack and the GitHub step summary when a run of another job than "
                                          f"{own_job} ends {_ENDS[status]} (the UI's Materialize).")
        def sensor(context: dg.RunStatusSensorContext) -> None:
            if context.dagster_run.job_name == own_job:
                return
            webhook = Webhook.from_env()
            run = facts(context)
            run.fill_from_instance(context.instance)
            for label, gate in sorted(run.gates.items()):
                if webhook and not gate.passed and gate.blocking:
                    webhook.post(gate_text(run.run_id, label, gate.detail or "no reason given"))
            finish(run, _ENDS[status], settings, webhook, context.instance)

        return sensor

    return [started, *(ended(status) for status in _ENDS)]


__all__ = ["notify_sensors"]
