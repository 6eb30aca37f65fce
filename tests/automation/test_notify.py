"""Notifications from the run itself: a run of the nexus_pipeline job launched in-process through
Dagster with no run config of ours (as the UI's launchpad or a sensor launches it) posts to a
local receiver on start, on each failed gate and at the end, once each, and writes the GitHub
step summary; a webhook that fails, is refused or hangs never fails or holds the run, and its
URL is never printed. (The CLI run is tested by tests/test_workflow.py, against the same receiver.)"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob  # what the webserver's run worker loads

from nexus_assets.core.keys import DISCOVERY_PARSED, DISCREPANCY_REPORT, WORKSPACE
from nexus_assets.core.settings import Settings
from nexus_assets.definitions import PIPELINE_JOB, build_definitions
from tests.automation.receiver import Receiver

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def strict_repo(tmp_path: Path) -> Settings:
    """nexus_mini with a critical PMMG module missing (never scaffolded: browser-only) and none
    allowed missing: the parity gate fails."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    toml = repo / "nexus-agent.toml"
    toml.write_text(toml.read_text().replace("max_critical_missing = 6",
                                             'max_critical_missing = 0\ncritical = ["pmmg-portal"]'))
    with (repo / "docs" / "investor_synopsis.md").open("a") as fh:
        fh.write("\n## 7. Portal\n- **pmmg-portal** - the PMMG browser portal\n")
    return Settings(repo=repo, workdir=tmp_path / "work", registry="127.0.0.1:5999/notify", version="1.0.0",
                    max_parallel=2)


def _run(settings: Settings, tmp_path: Path) -> tuple[dg.ExecuteInProcessResult, float]:
    """The job as the UI launches it: no run config (the job's own default names its loggers)."""
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    job = build_definitions(settings).resolve_job_def(PIPELINE_JOB)
    started = time.monotonic()
    result = job.execute_in_process(instance=instance, asset_selection=[WORKSPACE, DISCOVERY_PARSED, DISCREPANCY_REPORT],
                                    raise_on_error=False)
    return result, time.monotonic() - started


def test_a_run_launched_through_dagster_notifies_start_each_failed_gate_and_end_once(
        strict_repo, tmp_path, monkeypatch, capfd):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step's summary\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    with Receiver() as receiver:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url)
        result, _ = _run(strict_repo, tmp_path)
        time.sleep(0.2)
    assert result.success  # the parity gate is not blocking in Dagster's sense: the release reads it
    start, gate, end = receiver.messages  # exactly three: once each
    assert f"run {result.run_id[:8]} started" in start
    assert "gate discrepancy_report:critical_modules_gate failed: parity gate failed: 1 critical module(s)" in gate
    assert "(pmmg-portal)" in gate
    assert f"run {result.run_id[:8]} succeeded" in end and "failed gates: discrepancy_report:critical_modules_gate" in end
    text = summary.read_text()
    assert text.startswith("earlier step's summary\n"), "the summary is appended, as GitHub's steps do"
    assert f"## Nexus pipeline: run `{result.run_id[:8]}` succeeded" in text
    assert "| `discrepancy_report:critical_modules_gate` | **FAILED** | parity gate failed: 1 critical" in text
    assert "no release step in this run" in text
    assert f"`{strict_repo.reports / 'discrepancy_report.json'}`" in text
    out, err = capfd.readouterr()
    assert "s3cr3tW3bh00kT0k3n" not in out + err + text


def test_nothing_is_sent_or_written_without_the_settings(strict_repo, tmp_path, monkeypatch):
    for name in ("SLACK_WEBHOOK_URL", "SLACK_WEBHOOK", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    with Receiver() as receiver:
        result, _ = _run(strict_repo, tmp_path)
    assert result.success and receiver.messages == []


def _refused_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T000/B000/s3cr3tW3bh00kT0k3n"


@pytest.mark.parametrize("mode", ["error", "refused", "hang"])
def test_a_webhook_that_fails_or_hangs_never_fails_or_holds_the_run(mode, strict_repo, tmp_path, monkeypatch, capfd):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("NEXUS_NOTIFY_TIMEOUT", "1")
    with Receiver("hang" if mode == "hang" else "error") as receiver:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", _refused_url() if mode == "refused" else receiver.url)
        result, seconds = _run(strict_repo, tmp_path)
        # the same run without a webhook, for the time it takes here
        monkeypatch.delenv("SLACK_WEBHOOK_URL")
        _, baseline = _run(strict_repo, tmp_path / "again")
    assert result.success
    assert seconds < baseline + 3.0, f"{mode}: the run took {seconds:.1f}s against {baseline:.1f}s without a webhook"
    assert f"run `{result.run_id[:8]}` succeeded" in summary.read_text(), "the summary does not wait on Slack"
    out, err = capfd.readouterr()
    expected = {"error": "the webhook answered HTTP 500", "refused": "ConnectionError (could not reach the webhook)",
                "hang": "no answer within 1s"}[mode]
    assert f"Slack notification not delivered: {expected}; the run goes on" in err
    assert "s3cr3tW3bh00kT0k3n" not in out + err


def _evaluate_sensors(defs: dg.Definitions, instance: dg.DagsterInstance, run_id: str) -> None:
    """What the daemon does for a finished run: each run-status sensor whose status the run went
    through, evaluated with the run's own event."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    kinds = {"nexus_notify_started": dg.DagsterEventType.RUN_START,
             "nexus_notify_success": dg.DagsterEventType.RUN_SUCCESS,
             "nexus_notify_failure": dg.DagsterEventType.RUN_FAILURE}
    for name, kind in kinds.items():
        records = instance.all_logs(run_id, of_type=kind)
        if records:
            sensor = defs.resolve_sensor_def(name)
            context = dg.build_run_status_sensor_context(sensor_name=name, dagster_event=records[0].dagster_event,
                                                         dagster_instance=instance, dagster_run=run)
            sensor(context)


def test_a_materialization_from_the_asset_graph_is_notified_by_the_run_status_sensors_once(
        strict_repo, tmp_path, monkeypatch):
    """The UI's "Materialize" runs the implicit asset job (no notify logger): the daemon's sensors
    notify it; a nexus_pipeline run, which notifies itself, gets nothing more from them."""
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster"))
    defs = build_definitions(strict_repo)
    selection = [WORKSPACE, DISCOVERY_PARSED, DISCREPANCY_REPORT]
    with Receiver() as receiver:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url)
        ui = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=selection, raise_on_error=False)
        assert receiver.messages == [], "the implicit asset job has no notify logger"
        _evaluate_sensors(defs, instance, ui.run_id)
        start, gate, end = receiver.messages
        assert f"run {ui.run_id[:8]} started (ui;" in start
        assert "gate discrepancy_report:critical_modules_gate failed: parity gate failed: 1 critical" in gate
        assert f"run {ui.run_id[:8]} succeeded" in end
        assert f"## Nexus pipeline: run `{ui.run_id[:8]}` succeeded" in summary.read_text()

        receiver.messages.clear()
        own = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            instance=instance, asset_selection=selection, raise_on_error=False)
        assert len(receiver.messages) == 3  # from the run's own logger
        _evaluate_sensors(defs, instance, own.run_id)
        assert len(receiver.messages) == 3, "the sensors leave nexus_pipeline's runs to their own logger"


def test_a_multiprocess_run_as_the_webserver_launches_it_notifies_each_gate_from_its_step_process(
        strict_repo, tmp_path, monkeypatch):
    """The UI's run worker runs each step in a process of its own: the failed gate is posted from
    the check's process before it exits, the start and end from the run's; once each."""
    module = tmp_path / "location.py"
    module.write_text("from nexus_assets.definitions import PIPELINE_JOB, build_definitions\n\n\n"
                      "def job():\n    return build_definitions().resolve_job_def(PIPELINE_JOB)\n")
    monkeypatch.setenv("NEXUS_REPO", str(strict_repo.repo))
    monkeypatch.setenv("NEXUS_WORKDIR", str(strict_repo.workdir))
    monkeypatch.setenv("REGISTRY", strict_repo.registry)
    monkeypatch.setenv("VERSION", "1.0.0")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    with Receiver() as receiver, dg.DagsterInstance.get() as instance:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url)
        result = dg.execute_job(ReconstructableJob.for_file(str(module), "job"), instance=instance,
                                asset_selection=[WORKSPACE, DISCOVERY_PARSED, DISCREPANCY_REPORT])
        assert result.success
        assert "Launching subprocess" in " ".join(
            str(r.message) for r in instance.all_logs(result.run_id)), "the steps ran in processes of their own"
        messages = list(receiver.messages)
    assert len(messages) == 3, messages
    assert sum("started" in m for m in messages) == 1 and sum("succeeded" in m for m in messages) == 1
    assert sum("gate discrepancy_report:critical_modules_gate failed" in m for m in messages) == 1
