"""One planner, one graph: a `nexus-agent run` builds the definitions once, and the CLI and the
repository sensor select the same keys for the same state (the sensor without the release), on a
real instance after a small real run."""

from __future__ import annotations

import dagster as dg
import pytest

import nexus_assets.definitions as definitions
from nexus_assets.cli import pipeline
from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.keys import RELEASE_KEYS

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _count_builds(monkeypatch) -> list[int]:
    """Count build_definitions calls from now on, in a fresh process's state (no graph loaded)."""
    calls: list[int] = []
    real = definitions.build_definitions
    monkeypatch.setattr(definitions, "_LOADED", [])
    monkeypatch.setattr(definitions, "build_definitions", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_one_run_builds_the_definitions_once(built, monkeypatch):
    repo, settings, _ = built
    server = repo / "services" / "node-svc-001" / "server.js"
    server.write_text(server.read_text() + "\n// changed\n")
    calls = _count_builds(monkeypatch)
    summary = run_pipeline(settings)
    assert summary.ok and summary.built == ["node-svc-001"], summary
    assert len(calls) == 1, f"build_definitions ran {len(calls)} times in one nexus-agent run"
    calls.clear()
    assert run_pipeline(settings).ok  # nothing changed: planned, no run
    assert len(calls) <= 1  # none when the remembered verdict answers, else once


def test_the_cli_and_the_sensor_select_the_same_keys(built, monkeypatch):
    repo, settings, instance = built
    server = repo / "services" / "node-svc-002" / "server.js"
    server.write_text(server.read_text() + "\n// changed\n")

    defs = definitions.build_definitions(settings)  # the code location's graph, as the daemon loads it
    sensor = defs.resolve_sensor_def("repo_change_sensor")
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, definitions=defs))
    assert isinstance(result, dg.SensorResult) and result.run_requests, result
    by_sensor = list(result.run_requests[0].asset_selection)

    launched: list[list[dg.AssetKey]] = []  # what nexus-agent run would launch, in the same state
    monkeypatch.setattr(pipeline, "_execute", lambda defs, keys, *rest: launched.append(list(keys)))
    run_pipeline(settings)
    assert launched, "nexus-agent planned no run"
    assert dg.AssetKey(["image", "node-svc-002"]) in by_sensor
    assert launched[0] == [*by_sensor, *RELEASE_KEYS]
