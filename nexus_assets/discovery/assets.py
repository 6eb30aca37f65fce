"""Step B as an asset: reports/discovery_parsed.json."""

import os
from pathlib import Path

import dagster as dg

from nexus_assets.core.errors import EngineError
from nexus_assets.core.fileio import write_json
from nexus_assets.core.hashing import json_version
from nexus_assets.core.keys import WORKSPACE
from nexus_assets.core.metadata import report_metadata
from nexus_assets.core.report_models import checked_report
from nexus_assets.discovery.inventory import discover
from nexus_assets.discovery.report import DiscoveryReport
from nexus_assets.resources import DockerEngine, NexusConfig

GUIDE_ARCHIVE = Path("/tmp/nexus-full-discovery.tar.gz")  # where the guide's troubleshooting looks


def _archive_path(workdir: Path) -> Path | None:
    explicit = os.environ.get("NEXUS_DISCOVERY_ARCHIVE")
    if explicit:
        return Path(explicit)
    return GUIDE_ARCHIVE if GUIDE_ARCHIVE.exists() else None


@dg.asset(
    deps=[WORKSPACE], group_name="prepare", kinds={"json"},
    description="Step B: reports/discovery_parsed.json, the inventory of services, compose files, env keys, "
                "git state, running containers and the discovery archive.",
)
def discovery_parsed(context: dg.AssetExecutionContext, nexus: NexusConfig, docker_engine: DockerEngine) -> dg.MaterializeResult:
    settings = nexus.settings()
    try:
        client = docker_engine.client()
    except EngineError as exc:
        context.log.warning(f"running containers not inventoried: {exc}")
        client = None
    inventory = discover(settings.workdir, archive=_archive_path(settings.workdir), docker_client=client)
    path = settings.reports / "discovery_parsed.json"
    write_json(path, checked_report(DiscoveryReport, inventory, "reports/discovery_parsed.json"))
    for problem in inventory.get("problems", []):
        context.log.warning(f"{problem.get('file') or problem.get('service')}:{problem.get('line') or ''} {problem['message']}")
    summary = inventory.get("summary", {})
    context.log.info("discovery: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(json_version(inventory)),
        metadata={**report_metadata(path), **{k: v for k, v in summary.items() if isinstance(v, int)},
                  "problems": len(inventory.get("problems", []))},
    )
