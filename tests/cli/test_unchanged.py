"""`nexus-agent run` with nothing changed says so without loading Dagster, only when everything
Dagster's last "nothing to do" was read from is as it was; any change takes the full verdict
again (real processes, engine, registry and Dagster storage)."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SHORTCUT = "nothing changed since the last run: no run launched (the same inputs as Dagster's last verdict)"
FULL = "nothing changed since the last run: no run launched\n"  # Dagster asked


def test_known_unchanged_only_while_every_input_is_as_it_was(tmp_path, unique_registry, docker_client,
                                                             remove_test_images):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 2)
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    args = [sys.executable, "-m", "nexus_assets.cli", "run", "--repo", str(repo), "--workdir", str(tmp_path / "w"),
            "--registry", unique_registry, "--version", "1.0.0"]

    def run() -> str:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "built node-svc-001" in run()  # then Dagster's verdict, remembered with its inputs
    shortcut = run()
    assert SHORTCUT in shortcut and "2 service(s): 0 to build, 2 current" in shortcut

    # A release tag removed from the engine: the full verdict, which puts it back.
    docker_client.api.remove_image(f"{unique_registry}/nexus/node-svc-001:latest")
    assert SHORTCUT not in run()
    assert docker_client.images.get(f"{unique_registry}/nexus/node-svc-001:latest")
    assert SHORTCUT in run()

    # Anything recorded in Dagster from elsewhere (the UI, the sensor): the full verdict.
    instance = dg.DagsterInstance.from_config(str(home))
    instance.report_runless_asset_event(dg.AssetObservation(dg.AssetKey(["elsewhere"]),
                                                            metadata={"note": "an event of another job"}))
    assert FULL in run() and SHORTCUT in run()

    # An edit in the repository: the full verdict, which rebuilds that service alone.
    app = next((repo / "services" / "node-svc-002").glob("*.js"))
    app.write_text(app.read_text() + "\n// changed\n")
    edited = run()
    assert "built node-svc-002" in edited and "node-svc-001" not in edited.split("to build")[1].split("\n")[0]
    assert "built node-svc-001" not in edited
    assert SHORTCUT in run()
