"""Steps A to D: the working copy, the discovered inventory, the parity report against the
canonical synopsis, and the services scaffolded for missing modules."""


import logging
import os
from pathlib import Path

import dagster as dg

from .. import discovery, parity, scaffold, synopsis
from ..errors import EngineError
from ..fileio import read_json, write_json
from ..hashing import file_sha256, json_version, tree_hash
from ..repo_config import load_repo_config
from ..resources import DockerEngine, NexusConfig
from ..workspace import sync_workspace

progress = logging.getLogger("nexus_assets.progress")
GUIDE_ARCHIVE = Path("/tmp/nexus-full-discovery.tar.gz")  # where the guide's troubleshooting looks


def _report_metadata(path: Path) -> dict:
    return {"path": dg.MetadataValue.path(str(path)), "sha256": file_sha256(path), "bytes": path.stat().st_size}


@dg.asset(
    group_name="prepare", kinds={"python"},
    description="Step A: the target repository synced into the working copy (reports/, artifacts/, output/ made).",
)
def workspace(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:
    settings = nexus.settings()
    result = sync_workspace(settings.repo, settings.workdir)
    progress.info("workspace %s: %d files, %d copied, %d removed", settings.workdir, result.files, result.copied, result.removed)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(tree_hash(settings.repo)[:24]),
        metadata={"repo": str(settings.repo), "workdir": str(settings.workdir), "files": result.files,
                  "copied": result.copied, "removed": result.removed},
    )


def _archive_path(workdir: Path) -> Path | None:
    explicit = os.environ.get("NEXUS_DISCOVERY_ARCHIVE")
    if explicit:
        return Path(explicit)
    return GUIDE_ARCHIVE if GUIDE_ARCHIVE.exists() else None


@dg.asset(
    deps=[workspace], group_name="prepare", kinds={"json"},
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
    inventory = discovery.discover(settings.workdir, archive=_archive_path(settings.workdir), docker_client=client)
    path = settings.reports / "discovery_parsed.json"
    write_json(path, inventory)
    for problem in inventory.get("problems", []):
        context.log.warning(f"{problem.get('file') or problem.get('service')}:{problem.get('line') or ''} {problem['message']}")
    summary = inventory.get("summary", {})
    progress.info("discovery: %s", ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(json_version(inventory)),
        metadata={**_report_metadata(path), **{k: v for k, v in summary.items() if isinstance(v, int)},
                  "problems": len(inventory.get("problems", []))},
    )


@dg.asset(
    deps=[discovery_parsed], group_name="prepare", kinds={"json"},
    description="Step C: reports/discrepancy_report.json, every canonical module of docs/investor_synopsis.md "
                "as present, partial or missing, with evidence, and what will be auto-scaffolded.",
)
def discrepancy_report(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:
    settings = nexus.settings()
    inventory = read_json(settings.reports / "discovery_parsed.json")
    canonical = synopsis.parse_synopsis(settings.workdir / "docs" / "investor_synopsis.md",
                                        display_path="docs/investor_synopsis.md")
    config = load_repo_config(settings.workdir)
    # Folders scaffolded by an earlier run are not evidence that the repository has the
    # module: they stay "scaffolded" in every report until the real service arrives.
    earlier = sorted(s["name"] for s in inventory["services"]
                     if (settings.workdir / "services" / s["name"] / scaffold.SCAFFOLD_MARKER).is_file())
    source_view = {**inventory, "services": [s for s in inventory["services"] if s["name"] not in earlier]}
    first = parity.compare(canonical, source_view, config, scaffolded=earlier)
    planned = sorted(set(earlier) | {name for name, _ in parity.modules_to_scaffold(first)})
    report = parity.compare(canonical, source_view, config, scaffolded=planned)
    path = settings.reports / "discrepancy_report.json"
    write_json(path, report)
    totals = report["totals"]
    progress.info("parity %.1f%%: %s; critical missing %s; gate %s",
                  report["parity_percent"], ", ".join(f"{k} {v}" for k, v in totals.items()),
                  report["critical_missing"] or "none", "passed" if report["gate"]["passed"] else "FAILED")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(json_version(report)),
        metadata={**_report_metadata(path), **totals, "parity_percent": report["parity_percent"],
                  "critical_missing": report["critical_missing"], "to_scaffold": planned},
    )


@dg.asset_check(asset=discrepancy_report, blocking=True,
                description="Guide gate: at most 6 critical modules missing, or auto-scaffolded.")
def critical_modules_gate(nexus: NexusConfig) -> dg.AssetCheckResult:
    report = read_json(nexus.settings().reports / "discrepancy_report.json")
    passed, message = parity.critical_gate(report)
    return dg.AssetCheckResult(passed=passed, description=message,
                               metadata={"critical_missing": report.get("critical_missing", []),
                                         "scaffolded": report.get("scaffolded", [])})


@dg.asset(
    deps=[discrepancy_report], group_name="prepare", kinds={"python"},
    description="Step D: services/<name>/ in the working copy for every missing canonical module "
                "(Python or Node.js template; existing folders never overwritten; PMMG never containerized).",
)
def scaffolded_services(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:
    settings = nexus.settings()
    report = read_json(settings.reports / "discrepancy_report.json")
    config = load_repo_config(settings.workdir)
    results = scaffold.scaffold_missing(settings.workdir, parity.modules_to_scaffold(report), config["scaffold"])
    rows = [{"name": r.name, "language": r.language, "port": r.port, "created": r.created, "reason": r.reason}
            for r in results]
    write_json(settings.reports / "scaffold_report.json", {"services": rows})
    created = [r.name for r in results if r.created]
    progress.info("scaffold: %d created, %d already there", len(created), len(results) - len(created))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(json_version(sorted(r.name for r in results))),
        metadata={"scaffolded": [r.name for r in results], "created_now": created,
                  "services": dg.MetadataValue.json(rows)},
    )
