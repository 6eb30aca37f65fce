"""Builds the Dagster definitions for one target repository. The per-service assets are
known at load time from the repository (and the working copy, for scaffolded services);
a new service appears after a code location reload, which `nexus-agent run` does itself."""

from __future__ import annotations

import os

import dagster as dg

from .assets import prepare
from .assets.e2e import e2e_tests_asset
from .assets.images import service_images_asset
from .assets.manifest import artifacts_manifest_asset, manifest_has_digests
from .baseimages import load_base_image_map
from .build import code_version
from .errors import EngineError
from .resources import DockerEngine, GitRepo, NexusConfig, docker_client
from .sensors import repo_change_sensor
from .settings import Settings
from .staleness import build_services

PREPARE_ASSETS = [prepare.workspace, prepare.discovery_parsed, prepare.discrepancy_report, prepare.scaffolded_services]
PREPARE_CHECKS = [prepare.critical_modules_gate]


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
