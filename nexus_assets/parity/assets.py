"""Step C as an asset: reports/discrepancy_report.json against the canonical synopsis."""


import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.hashing import json_version
from nexus_assets.core.keys import DISCOVERY_PARSED, DISCOVERY_PARSED_FILE, DISCREPANCY_REPORT_FILE
from nexus_assets.core.metadata import report_metadata
from nexus_assets.core.report_models import checked_report
from nexus_assets.parity.compare import compare
from nexus_assets.parity.report import DiscrepancyReport
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.policy.scaffolding import modules_to_scaffold
from nexus_assets.resources import NexusConfig
from nexus_assets.target.repo_config import load_repo_config
from nexus_assets.target.services import SCAFFOLD_MARKER


@dg.asset(
    deps=[DISCOVERY_PARSED], group_name="prepare", kinds={"json"},
    description="Step C: reports/discrepancy_report.json, every canonical module of docs/investor_synopsis.md "
                "as present, partial or missing, with evidence, and what will be auto-scaffolded.",
)
# Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
def discrepancy_report(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = nexus.settings()
    with nexus.hold_workdir(context):  # one writer per working copy
        inventory = read_json(settings.workdir / DISCOVERY_PARSED_FILE)
        canonical = parse_synopsis(settings.workdir / "docs" / "investor_synopsis.md",
                                            display_path="docs/investor_synopsis.md")
        config = load_repo_config(settings.workdir)
        # Folders scaffolded by an earlier run are not evidence that the repository has the
        # module: they stay "scaffolded" in every report until the real service arrives.
        earlier = sorted(s["name"] for s in inventory["services"]
                         if (settings.workdir / "services" / s["name"] / SCAFFOLD_MARKER).is_file())
        source_view = {**inventory, "services": [s for s in inventory["services"] if s["name"] not in earlier]}
        first = compare(canonical, source_view, config, scaffolded=earlier)
        planned = sorted(set(earlier) | {name for name, _ in modules_to_scaffold(first)})
        report = compare(canonical, source_view, config, scaffolded=planned)
        path = settings.workdir / DISCREPANCY_REPORT_FILE
        write_json(path, checked_report(DiscrepancyReport, report, DISCREPANCY_REPORT_FILE))
        totals = report["totals"]
        counts = ", ".join(f"{k} {v}" for k, v in totals.items())
        gate = "passed" if report["gate"]["passed"] else "FAILED"
        context.log.info(f"parity {report['parity_percent']:.1f}%: {counts}; "
                         f"critical missing {report['critical_missing'] or 'none'}; gate {gate}")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(json_version(report)),
            metadata={**report_metadata(path), **totals, "parity_percent": report["parity_percent"],
                      "critical_missing": report["critical_missing"], "to_scaffold": planned},
        )
