"""The repository change sensor under a real dagster-daemon: a one-file change rebuilds exactly
that image, and a revert rebuilds it again, with no hand in between."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.testrepos.synthetic import generate_monorepo

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"nexus/origin": "sensor"})))


def _wait_for_run(instance: dg.DagsterInstance, seen: set[str], timeout: float = 240) -> dg.DagsterRun:
    """The next sensor run not in seen, once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in _sensor_runs(instance):
            if run.run_id not in seen and run.is_finished:
                seen.add(run.run_id)
                return run
        time.sleep(2)
    raise AssertionError(f"no sensor run finished within {timeout:.0f}s")


def _built(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[str]:
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records
            if r.event_log_entry.dagster_event.asset_key.path[0] == "image"}


def test_the_sensor_under_a_daemon_rebuilds_one_change_and_its_revert(tmp_path, settings_for, monkeypatch,
                                                                      remove_test_images):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    repo = tmp_path / "repo"
    generate_monorepo(repo, 2)
    settings = settings_for(repo)
    assert run_pipeline(settings).ok
    instance = open_instance(settings)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "DAGSTER_HOME": str(home), "NEXUS_REPO": str(repo),
           "NEXUS_WORKDIR": str(settings.workdir), "REGISTRY": settings.registry, "HOME": str(tmp_path),
           **{k: v for k, v in os.environ.items() if k in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")}}
    started = subprocess.run([str(BIN / "dagster"), "sensor", "start", "repo_change_sensor", "-w", "workspace.yaml"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        seen = {r.run_id for r in _sensor_runs(instance)}
        server = repo / "services" / "node-svc-002" / "server.js"
        original = server.read_text()
        server.write_text(original + "\n// changed under the daemon\n")
        run = _wait_for_run(instance, seen)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        assert run.job_name == "nexus_pipeline"
        assert _built(instance, run) == {"image/node-svc-002"}

        server.write_text(original)  # the revert
        run = _wait_for_run(instance, seen)
        assert _built(instance, run) == {"image/node-svc-002"}, "a revert rebuilds"
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=60)
