"""The code location loads, validates with Dagster's own CLI and has the whole graph."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_have_every_stage_and_one_image_per_sample_service(tmp_path):
    settings = Settings(repo=SAMPLE_REPO, workdir=tmp_path / "w", registry="r", version="1.0.0", max_parallel=2)
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services", "artifacts_manifest"} <= keys
    sample_services = sorted(p.name for p in (SAMPLE_REPO / "services").iterdir() if (p / "Dockerfile").exists())
    assert sorted(k.split("/", 1)[1] for k in keys if k.startswith("image/")) == sample_services
    assert defs.resolve_job_def("nexus_pipeline") is not None
    assert defs.resolve_sensor_def("repo_change_sensor") is not None
    # the UI's way to the planner's run, evaluated by hand: never launches on its own as shipped
    assert defs.resolve_sensor_def("materialize_stale").default_status == dg.DefaultSensorStatus.STOPPED
    manifest = graph.get(dg.AssetKey("artifacts_manifest"))
    # the auditor's chain goes on after provenance: each service's provenance is upstream of
    # attestations, which is upstream of the manifest
    assert set(manifest.parent_keys) == {dg.AssetKey("tagged_images"), dg.AssetKey("pushed_images"),
                                         dg.AssetKey("e2e_tests"), dg.AssetKey("attestations")}
    attestations = graph.get(dg.AssetKey("attestations"))
    assert {dg.AssetKey(["provenance", s]) for s in sample_services} <= set(attestations.parent_keys)
    pushed = graph.get(dg.AssetKey("pushed_images"))
    assert {dg.AssetKey(["pushed", s]) for s in sample_services} <= set(pushed.parent_keys)
    for service in sample_services:  # per-service lineage and staleness: the push follows its image
        push = graph.get(dg.AssetKey(["pushed", service]))
        assert set(push.parent_keys) == {dg.AssetKey(["image", service])} and push.group_name == "publish"
    release = graph.get(dg.AssetKey("verified_release"))
    assert set(release.parent_keys) == {dg.AssetKey(k) for k in ("artifacts_manifest", "compliance_report",
                                                                  "deployment_package", "evidence_pack")}
    assert dg.AssetKey("compliance_report") in graph.get(dg.AssetKey("evidence_pack")).parent_keys
    assert set(graph.get(dg.AssetKey("deployment_report")).parent_keys) == {dg.AssetKey("verified_release"),
                                                                           dg.AssetKey("artifacts_manifest")}
    assert release.group_name == "release"
    tagged = graph.get(dg.AssetKey("tagged_images"))
    assert {dg.AssetKey(["image", s]) for s in sample_services} <= set(tagged.parent_keys)
    for service in sample_services:
        image = graph.get(dg.AssetKey(["image", service]))
        parents = {k.to_user_string() for k in image.parent_keys}
        # What the image is made from is in the graph: its sources, its base images, and the
        # working copy (order only); its code version is the recipe, the same for every service.
        assert f"source/{service}" in parents and "scaffolded_services" in parents
        assert any(p.startswith("base_image/") for p in parents), parents
        assert image.code_version and image.code_version.startswith("recipe-")
        assert graph.get(dg.AssetKey(["source", service])).is_observable
        # Each SBOM depends on its own image only, each provenance on its own push and SBOM:
        # staleness stays per service although one step makes them all.
        assert set(graph.get(dg.AssetKey(["sbom", service])).parent_keys) == {dg.AssetKey(["image", service])}
        assert set(graph.get(dg.AssetKey(["provenance", service])).parent_keys) == {
            dg.AssetKey(["pushed", service]), dg.AssetKey(["sbom", service])}
    assert dg.AssetKey("attestations") in set(graph.get(dg.AssetKey("evidence_pack")).parent_keys)


def test_definitions_load_without_an_engine_and_without_waiting(tmp_path, monkeypatch):
    """Loading does no engine or network call: a code server or run worker that cannot see the
    engine gets the same graph and the same code versions."""
    settings = Settings(repo=SAMPLE_REPO, workdir=tmp_path / "w", registry="r", version="1.0.0", max_parallel=2)
    with_engine = build_definitions(settings).resolve_asset_graph()
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    started = time.monotonic()
    without = build_definitions(settings).resolve_asset_graph()
    assert time.monotonic() - started < 10
    assert {k: with_engine.get(k).code_version for k in with_engine.get_all_asset_keys()} == \
        {k: without.get(k).code_version for k in without.get_all_asset_keys()}


def test_dagster_definitions_validate_passes(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "NEXUS_WORKDIR": str(tmp_path / "w")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_one_static_graph_a_run_selects_from(tmp_path, monkeypatch):
    """The graph's shape depends on the repository only: one step of each attest kind for every
    service, and a run that rebuilds one image selects every SBOM and provenance of that one graph
    (the steps make only what is stale). Within a process the graph is built once per code version."""
    import nexus_assets.definitions as definitions
    from nexus_assets.core.plan import selection
    from nexus_assets.target.services import build_services

    settings = Settings(repo=SAMPLE_REPO, workdir=tmp_path / "w", registry="r", version="1.0.0", max_parallel=2)
    services = build_services(settings)
    built = []
    real = definitions.build_definitions
    monkeypatch.setattr(definitions, "build_definitions", lambda *a, **k: built.append(1) or real(*a, **k))
    defs = definitions.definitions_for(settings, services)
    assert definitions.definitions_for(settings, build_services(settings)) is defs and len(built) == 1
    graph = defs.resolve_asset_graph()
    names = sorted(k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "sbom")
    assert len(names) > 1
    selected = set(selection(graph, names, names[:1], names[:1]))
    assert {dg.AssetKey(["sbom", n]) for n in names} <= selected and dg.AssetKey(["image", names[1]]) not in selected
    job = defs.resolve_job_def("nexus_pipeline").get_subset(asset_selection=selected)
    assert set(job.asset_layer.selected_asset_keys) == selected
    nodes = {n.name for n in defs.resolve_job_def("nexus_pipeline").graph.nodes}
    assert {"sboms", "provenance"} <= nodes and not any(n.endswith("_other") for n in nodes)
