"""Step B as an asset: reports/discovery_parsed.json."""

import os
from pathlib import Path

import dagster as dg

from nexus_assets.core.errors import EngineError
from nexus_assets.core.fileio import write_json
from nexus_assets.core.hashing import json_version
from nexus_assets.core.keys import DISCOVERY_PARSED_FILE, WORKSPACE
from nexus_assets.core.metadata import report_metadata
from nexus_assets.core.report_models import checked_report
from nexus_assets.discovery.inventory import discover
from nexus_assets.discovery.report import DiscoveryReport
from nexus_assets.resources import DockerEngine, NexusConfig


def _archive_path() -> Path | None:
    """The discovery archive named by NEXUS_DISCOVERY_ARCHIVE, else None: discovery then looks
    only in the repository's own nexus-discovery/ (or nexus-discovery.tar.gz). Never the guide's
    /tmp/nexus-full-discovery.tar.gz by default: anyone on the host can write there, and the
    archive's contents become evidence and secrets in the reports. To use it, set the variable."""
    explicit = os.environ.get("NEXUS_DISCOVERY_ARCHIVE")
    return Path(explicit) if explicit else None


@dg.asset(
    deps=[WORKSPACE], group_name="prepare", kinds={"json"},
    description="Step B: reports/discovery_parsed.json, the inventory of services, compose files, env keys, "
                "git state, running containers and the discovery archive.",
)
# Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
def discovery_parsed(context: dg.AssetExecutionContext, nexus: NexusConfig,
                     docker_engine: DockerEngine) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = nexus.settings()
    with nexus.hold_workdir(context):  # one writer per working copy
        try:
            client = docker_engine.client()
        except EngineError as exc:
            context.log.warning(f"running containers not inventoried: {exc}")
            client = None
        # The working copy is inventoried (scaffolds included); git state is the target repository's.
        inventory = discover(settings.workdir, archive=_archive_path(), docker_client=client,
                             git_repo=settings.repo, compose_file=settings.compose_file)
        path = settings.workdir / DISCOVERY_PARSED_FILE
        write_json(path, checked_report(DiscoveryReport, inventory, DISCOVERY_PARSED_FILE))
        for problem in inventory.get("problems", []):
            context.log.warning(f"{problem.get('file') or problem.get('service')}:{problem.get('line') or ''} {problem['message']}")
        summary = inventory.get("summary", {})
        context.log.info("discovery: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
        return dg.MaterializeResult(
            data_version=dg.DataVersion(json_version(inventory)),
            metadata={**report_metadata(path), **{k: v for k, v in summary.items() if isinstance(v, int)},
                      "problems": len(inventory.get("problems", []))},
        )
