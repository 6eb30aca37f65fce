"""Every run says where it was launched from, the version it releases and who launched it:
nexus_pipeline's own runs through the job's tags (a launch's own tags win: the CLI and the
sensor say so), the UI's implicit asset job through the notify sensor when it starts; a release
step records its verdict (made, deferred, refused) as a run tag."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import dagster as dg

from nexus_assets.core.keys import DISCOVERY_PARSED, ORIGIN_TAG, WORKSPACE
from nexus_assets.core.run_tags import RELEASE_TAG, VERSION_TAG, WHO_TAG, who
from nexus_assets.core.settings import Settings
from nexus_assets.definitions import PIPELINE_JOB, build_definitions
from nexus_assets.release.assets import release_verdict
from nexus_assets.release.verified import ReleaseOutcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _settings(tmp_path: Path) -> Settings:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    return Settings(repo=repo, workdir=tmp_path / "work", registry="127.0.0.1:5999/tags", version="2.3.4",
                    max_parallel=2)


def test_pipeline_runs_carry_origin_version_and_who_and_the_ui_job_gets_them_at_start(tmp_path, monkeypatch):
    for name in ("GITHUB_ACTIONS", "SLACK_WEBHOOK_URL", "SLACK_WEBHOOK", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    defs = build_definitions(_settings(tmp_path))
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    job = defs.resolve_job_def(PIPELINE_JOB)
    own = job.execute_in_process(instance=instance, asset_selection=[WORKSPACE], raise_on_error=False)
    tags = instance.get_run_by_id(own.run_id).tags
    assert tags[ORIGIN_TAG] == "ui" and tags[VERSION_TAG] == "2.3.4" and tags[WHO_TAG] == f"user:{getpass.getuser()}"
    cli = job.execute_in_process(instance=instance, asset_selection=[WORKSPACE], raise_on_error=False,
                                 tags={ORIGIN_TAG: "cli"})
    assert instance.get_run_by_id(cli.run_id).tags[ORIGIN_TAG] == "cli"  # the launch's own tag wins

    ui = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[WORKSPACE, DISCOVERY_PARSED], raise_on_error=False)
    assert ORIGIN_TAG not in instance.get_run_by_id(ui.run_id).tags  # what the asset graph's Materialize launches
    run = instance.get_run_by_id(ui.run_id)
    [start] = instance.all_logs(ui.run_id, of_type=dg.DagsterEventType.RUN_START)
    sensor = defs.resolve_sensor_def("nexus_notify_started")
    sensor(dg.build_run_status_sensor_context(sensor_name="nexus_notify_started", dagster_event=start.dagster_event,
                                              dagster_instance=instance, dagster_run=run))
    tags = instance.get_run_by_id(ui.run_id).tags
    assert tags[ORIGIN_TAG] == "ui" and tags[VERSION_TAG] == "2.3.4" and tags[WHO_TAG].startswith("user:")


def test_who_names_the_workflow_under_github_actions(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKFLOW", "Nexus COS Agent Orchestration")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert who() == "workflow:Nexus COS Agent Orchestration#42 (octocat)"


def test_the_release_verdict_tag():
    base = {"version": "1.0.0", "tag": "verified_release_v1.0.0"}
    assert release_verdict(ReleaseOutcome(**base, made=False, deferred_for=["new-svc"])) == "deferred"
    assert release_verdict(ReleaseOutcome(**base, made=True)) == "made"
    assert release_verdict(ReleaseOutcome(**base, made=True, already_released=True)) == "already released"
    assert release_verdict(ReleaseOutcome(**base, made=False, failed_gates=["image/users:unit"])) == "refused"
    assert RELEASE_TAG == "nexus/release"


def test_the_launchpad_carries_version_and_deploy_staging_and_a_deploy_follows_a_made_release(tmp_path, monkeypatch):
    """nexus_pipeline's run config shows the settings, version and deploy_staging among them; a
    launch that changes the version releases that version; one that asks for deploy_staging is
    followed by the deploy job once its release was made, and only then."""
    from nexus_assets.core.keys import ARTIFACTS_MANIFEST

    for name in ("SLACK_WEBHOOK_URL", "SLACK_WEBHOOK", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings(tmp_path)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(PIPELINE_JOB)
    nexus = job.run_config["resources"]["nexus"]["config"]
    assert nexus["version"] == "2.3.4" and nexus["deploy_staging"] is False and nexus["workdir"] == str(settings.workdir)
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    asked = {**job.run_config, "resources": {"nexus": {"config": {**nexus, "version": "7.7.7", "deploy_staging": True}}}}
    run = job.execute_in_process(instance=instance, asset_selection=[ARTIFACTS_MANIFEST], run_config=asked,
                                 raise_on_error=False)
    manifest = (settings.artifacts / "artifacts_manifest.json").read_text()
    assert '"version": "7.7.7"' in manifest and '"release_tag": "verified_release_v7.7.7"' in manifest
    plain = job.execute_in_process(instance=instance, asset_selection=[WORKSPACE], raise_on_error=False)

    sensor = defs.resolve_sensor_def("nexus_deploy_after_release")

    def evaluate(run_id: str):
        record = instance.get_run_by_id(run_id)
        event = instance.all_logs(run_id, of_type={dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE})[0]
        return sensor(dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=event.dagster_event,
                                                         dagster_instance=instance, dagster_run=record))

    assert isinstance(evaluate(plain.run_id), dg.SkipReason)  # not asked for
    instance.add_run_tags(run.run_id, {RELEASE_TAG: "deferred"})
    assert "deferred" in evaluate(run.run_id).skip_message
    instance.add_run_tags(run.run_id, {RELEASE_TAG: "made"})
    request = evaluate(run.run_id)
    assert isinstance(request, dg.RunRequest) and request.tags["nexus/after_run"] == run.run_id
