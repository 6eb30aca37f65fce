"""Wiring only: the Dagster definitions for one target repository, from the stages' assets.

Loading does no engine or network call: services and their base-image names are read from
files, versions come from observations made at run time (core.lineage). A service added to
the repository becomes an asset at the next load (nexus-agent reloads by itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.attest.assets import EVIDENCE_PACK_PART, attest_assets
from nexus_assets.automation.deploy_sensor import deploy_after_release
from nexus_assets.automation.materialize_stale import materialize_stale_sensor
from nexus_assets.automation.notify import notify_logger
from nexus_assets.automation.notify_sensors import notify_sensors
from nexus_assets.automation.sensors import repo_change_sensor
from nexus_assets.compliance.assets import compliance_report_part
from nexus_assets.core.catalog import catalogued, service_categories
from nexus_assets.core.console import nexus_console
from nexus_assets.core.instance_storage import tune_sqlite
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST,
    DISCREPANCY_REPORT_FILE,
    EVIDENCE_PACK,
    PIPELINE_JOB,
    RELEASE_DOCS,
    STAGING_DEPLOYMENT,
)
from nexus_assets.core.lineage import declared_bases
from nexus_assets.core.one_step import one_step
from nexus_assets.core.run_tags import run_tags
from nexus_assets.core.settings import Settings
from nexus_assets.deploy.assets import (
    audit_job,
    audit_schedule,
    deploy_job,
    staging_deployment,
    staging_drift_audit,
)
from nexus_assets.discovery.assets import discovery_parsed
from nexus_assets.images.assets import service_images_asset
from nexus_assets.images.sources import base_image_assets, source_assets
from nexus_assets.package.assets import deployment_package_part
from nexus_assets.parity.assets import discrepancy_report
from nexus_assets.parity.checks import critical_modules_gate
from nexus_assets.publish.assets import pushed_specs, start_publishing
from nexus_assets.release.assets import (
    artifacts_manifest_part,
    deployment_report_asset,
    verified_release_asset,
)
from nexus_assets.resources import DockerEngine, GitRepo, NexusConfig
from nexus_assets.resources.github import GitHub
from nexus_assets.resources.registry import Registry
from nexus_assets.resources.staging import StagingHost
from nexus_assets.scaffold.assets import scaffolded_services
from nexus_assets.target.services import Service, build_services
from nexus_assets.testing.stage import Publisher, ServiceTests
from nexus_assets.verify import lint_record
from nexus_assets.verify.assets import e2e_tests_asset
from nexus_assets.verify.service_tests import run_integration, run_lint, run_unit, run_unit_and_integration
from nexus_assets.workspace.assets import workspace

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph


PREPARE_ASSETS = [workspace, discovery_parsed, discrepancy_report, scaffolded_services]
SERVICE_TESTS = ServiceTests(lint=run_lint, unit=run_unit, integration=run_integration,
                             unit_and_integration=run_unit_and_integration,
                             lint_labels=lint_record.labels, lint_from_label=lint_record.from_label)
PUBLISHER = Publisher(specs=pushed_specs, start=start_publishing)


def build_definitions(settings: Settings | None = None, services: list[Service] | None = None,
                      engine: DockerEngine | None = None) -> dg.Definitions:
    """The definitions for settings' repository; services as build_services(settings) gives them,
    when the caller has just read them; engine: the docker_engine resource (default: DOCKER_HOST's;
    nexus-agent binds the one it plans with). The graph's shape depends on the repository only (its
    code version), never on what a run will do: a run chooses by selection (core/plan.py)."""
    tune_sqlite()  # a run this process executes stores its events at page-cache speed (core/instance_storage.py)
    if settings is None:  # the code location (UI, sensor): bad settings refused as nexus-agent refuses them
        settings = Settings.from_env()
        settings.validate()
    services = build_services(settings) if services is None else services
    names = [s.name for s in services]
    base_names = sorted({b.image for s in services for b in declared_bases(s)})
    # Steps that ask Dagster what is stale need the whole graph, which exists once defs does.
    built: dict[str, dg.Definitions] = {}

    def asset_graph() -> BaseAssetGraph[Any]:
        return built["defs"].resolve_asset_graph()

    assets: list[Any] = [*PREPARE_ASSETS, e2e_tests_asset(),
                    # the manifest, the compliance PDF, the package and the evidence pack with their gates:
                    # one step, each still its own asset and checks (a step each cost more than most made)
                    one_step("release_documents", [artifacts_manifest_part(names, asset_graph),
                                                   compliance_report_part(asset_graph),
                                                   deployment_package_part(asset_graph), EVIDENCE_PACK_PART],
                             {"nexus", "git"}),
                    # the release follows the manifest, the documents it attaches and the evidence
                    # pack, and reads their gates
                    verified_release_asset(asset_graph, [ARTIFACTS_MANIFEST, *RELEASE_DOCS, EVIDENCE_PACK], names),
                    deployment_report_asset(names), staging_deployment]
    if services:
        assets += [source_assets(services),
                   service_images_asset(services, SERVICE_TESTS, asset_graph,
                                        registry=settings.registry, version=settings.version, publisher=PUBLISHER),
                   *attest_assets(names, asset_graph)]
    if base_names:
        assets.append(base_image_assets(base_names))
    # owners, the stage and each service's canonical category as tags (the UI filters by them)
    assets = catalogued(assets, service_categories(settings.workdir / DISCREPANCY_REPORT_FILE))
    nexus = NexusConfig.of(settings)
    built["defs"] = dg.Definitions(
        assets=assets,
        asset_checks=[critical_modules_gate, staging_drift_audit],
        jobs=[dg.define_asset_job(
            # the staging deploy is a job of its own (deploy_job): a pipeline run never deploys
            PIPELINE_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(STAGING_DEPLOYMENT),
            # every run of the job, from wherever it is launched, logs to the terminal's lines and
            # notifies (automation/notify.py: Slack, the GitHub step summary) from its own events
            config={"loggers": {"console": {"config": {"log_level": "INFO"}}, "notify": {}},
                    # the launchpad shows (and takes) version and deploy_staging, among the settings
                    "resources": {"nexus": {"config": {f: getattr(nexus, f) for f in NexusConfig.model_fields}}}},
            # origin ui, the version and who, unless the launch says otherwise (the CLI, the sensor)
            run_tags=run_tags(settings.version),
            description="The whole pipeline, workspace to manifest. Fresh images are left as they are; a run "
                        "tagged nexus/force=true rebuilds every selected image."), deploy_job, audit_job],
        schedules=[audit_schedule],
        sensors=[repo_change_sensor(names), materialize_stale_sensor(names), *notify_sensors(settings, PIPELINE_JOB),
                 deploy_after_release(PIPELINE_JOB, deploy_job)],
        loggers={"console": nexus_console, "notify": notify_logger(settings)},
        resources={
            "nexus": nexus,
            "docker_engine": engine or DockerEngine.from_env(),
            "git": GitRepo(path=str(settings.repo)),
            "registry": Registry(address=settings.registry),  # credentials: the environment's, when asked
            "github": GitHub(),  # empty fields: GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL when a release asks
            "staging_host": StagingHost(),  # empty fields: NEXUS_STAGING_* at run time
        },
    )
    return built["defs"]


# this process's graph, per code version
_LOADED: list[tuple[Settings, list[Service], DockerEngine, dg.Definitions]] = []


def definitions_for(settings: Settings, services: list[Service], engine: DockerEngine | None = None) -> dg.Definitions:
    """The definitions for these settings and services, built once per process: the same graph
    while the repository's services are as they were (one static graph per code version); a
    service added since (scaffolded) is a new code version, loaded as a reload of the code
    location would. engine: as for build_definitions (resources compare by their config)."""
    engine = engine or DockerEngine.from_env()
    for loaded_settings, loaded_services, loaded_engine, defs in _LOADED:
        if loaded_settings == settings and loaded_services == services and loaded_engine == engine:
            return defs
    defs = build_definitions(settings, services, engine)
    _LOADED[:] = [(settings, services, engine, defs)]  # the newest only: an older code version is not asked again
    return defs
