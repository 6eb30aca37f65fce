"""Step D as an asset: services scaffolded in the working copy for missing canonical modules."""


import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.keys import DISCREPANCY_REPORT
from nexus_assets.core.report_models import checked_report
from nexus_assets.policy.scaffolding import modules_to_scaffold
from nexus_assets.resources import NexusConfig
from nexus_assets.target.repo_config import load_repo_config

WORKING_COPY_READY = "working-copy-ready"
from nexus_assets.core.keys import DISCREPANCY_REPORT_FILE, SCAFFOLD_REPORT_FILE
from nexus_assets.scaffold.generate import scaffold_missing
from nexus_assets.scaffold.report import ScaffoldReport


@dg.asset(
    deps=[DISCREPANCY_REPORT], group_name="prepare", kinds={"python"},
    description="Step D: services/<name>/ in the working copy for every missing canonical module "
                "(Python or Node.js template; existing folders never overwritten; PMMG never containerized).",
)
# Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
def scaffolded_services(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = nexus.settings()
    with nexus.hold_workdir(context):  # one writer per working copy
        report = read_json(settings.workdir / DISCREPANCY_REPORT_FILE)
        config = load_repo_config(settings.workdir)
        results = scaffold_missing(settings.workdir, modules_to_scaffold(report), config["scaffold"],
                                   source=str(settings.repo / "docs" / "investor_synopsis.md"))
        rows = [{"name": r.name, "language": r.language, "port": r.port, "created": r.created, "reason": r.reason}
                for r in results]
        write_json(settings.workdir / SCAFFOLD_REPORT_FILE,
                   checked_report(ScaffoldReport, {"services": rows}, SCAFFOLD_REPORT_FILE))
        created = [r.name for r in results if r.created]
        context.log.info(f"scaffold: {len(created)} created, {len(results) - len(created)} already there")
        return dg.MaterializeResult(
            # Images depend on this asset only to run after the working copy is ready: a constant data
            # version keeps a new scaffolded module from making every image stale.
            data_version=dg.DataVersion(WORKING_COPY_READY),
            metadata={"scaffolded": [r.name for r in results], "created_now": created,
                      "services": dg.MetadataValue.json(rows)},
        )
