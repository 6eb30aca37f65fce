"""Builds the Dagster definitions for one target repository. The per-service assets are
known at load time from the repository (and the working copy, for scaffolded services);
a new service appears after a code location reload, which `nexus-agent run` does itself."""

from __future__ import annotations

import os

import dagster as dg

from nexus_assets.automation.sensors import repo_change_sensor
from nexus_assets.core.errors import EngineError
from nexus_assets.core.settings import Settings
from nexus_assets.discovery.assets import discovery_parsed
from nexus_assets.images.assets import service_images_asset
from nexus_assets.images.baseimages import load_base_image_map
from nexus_assets.images.build import code_version
from nexus_assets.images.staleness import build_services
from nexus_assets.parity.assets import discrepancy_report
from nexus_assets.parity.checks import critical_modules_gate
from nexus_assets.release.assets import artifacts_manifest_asset, manifest_has_digests
from nexus_assets.resources import DockerEngine, GitRepo, NexusConfig, docker_client
from nexus_assets.scaffold.assets import scaffolded_services
from nexus_assets.verify.assets import e2e_tests_asset
from nexus_assets.workspace.assets import workspace

PREPARE_ASSETS = [workspace, discovery_parsed, discrepancy_report, scaffolded_services]
PREPARE_CHECKS = [critical_modules_gate]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    # Code versions come from the repository (the source of truth, so the UI shows a change
    # there as stale at once); builds read the synced working copy at run time.
    services = build_services(settings, prefer_repo=True)
    try:
        client = docker_client(os.environ.get("DOCKER_HOST", ""), timeout=30)
    except EngineError:
        client = None  # the UI still shows the graph; builds will say the engine is missing
    base_map = load_base_image_map()
    try:
        versions = {s.name: code_version(s, client, base_map) for s in services}
    finally:
        if client is not None:
            client.close()
    assets: list = list(PREPARE_ASSETS)
    if services:
        assets.append(service_images_asset(services, versions))
    assets.append(e2e_tests_asset([s.name for s in services]))
    assets.append(artifacts_manifest_asset([s.name for s in services]))
    return dg.Definitions(
        assets=assets,
        asset_checks=[*PREPARE_CHECKS, manifest_has_digests],
        jobs=[dg.define_asset_job("nexus_pipeline", selection=dg.AssetSelection.all(),
                                  description="The whole pipeline: workspace to manifest.")],
        sensors=[repo_change_sensor([s.name for s in services])],
        resources={
            "nexus": NexusConfig(repo=str(settings.repo), workdir=str(settings.workdir), registry=settings.registry,
                                 version=settings.version, max_parallel=settings.max_parallel,
                                 test_timeout=settings.test_timeout),
            "docker_engine": DockerEngine(base_url=os.environ.get("DOCKER_HOST", "")),
            "git": GitRepo(path=str(settings.repo)),
        },
    )
