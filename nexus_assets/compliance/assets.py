"""Step G as an asset: reports/compliance_report_YYYYMMDD.pdf, and its blocking gate.

The report is remade only when Dagster holds it stale (the data version of an input or its code
version changed) or its file is gone or altered; a fresh report selected again (every run of
`nexus-agent run` selects it) is left as it is and recorded again under the same data version,
so nothing after it turns stale."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.compliance.checks import PMMG_CHECKS, contents_problems, policy_fingerprint, recorded_pmmg_images
from nexus_assets.compliance.lineage import ancestors, lineage_rows
from nexus_assets.compliance.outputs import artifact_files
from nexus_assets.core.fileio import write_atomic
from nexus_assets.core.freshness import kept_materialization
from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST,
    COMPLIANCE_REPORT,
    COMPLIANCE_REPORT_FILE,
    DISCOVERY_PARSED,
    DISCREPANCY_REPORT,
    SCAFFOLDED_SERVICES,
    dated,
)
from nexus_assets.core.lineage import latest_metadata
from nexus_assets.core.metadata import (
    LINKED,
    EvidenceLinks,
    recorded_manifest,
    report_metadata,
    service_table_metadata,
)
from nexus_assets.core.one_step import Check, Part
from nexus_assets.core.settings import Settings
from nexus_assets.policy.secret_scan import env_secrets, mask_values, scan_files
from nexus_assets.resources import GitRepo, NexusConfig

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph


# Bump when what the report shows or how it is drawn changes: every report turns stale.
# 3: PMMG rules with their files, "no tests", e2e skipped, the report's own contents gate
REPORT_CODE_VERSION = "compliance-3"  # 2: how each image was obtained (built, or the registry cache)


def _public_names(settings: Settings) -> set[str]:
    return {p.name for p in (settings.workdir / "services").iterdir() if p.is_dir()} \
        if (settings.workdir / "services").is_dir() else set()


def compliance_report_part(asset_graph: "Callable[[], BaseAssetGraph[Any]]") -> Part:
    """compliance_report, its gate and the PMMG rules' checks, one part of the release
    documents' step (core/one_step.py)."""
    spec = dg.AssetSpec(
        key=COMPLIANCE_REPORT,
        deps=[ARTIFACTS_MANIFEST, DISCOVERY_PARSED, DISCREPANCY_REPORT, SCAFFOLDED_SERVICES],
        group_name="compliance", kinds={"pdf"}, code_version=REPORT_CODE_VERSION,
        description="reports/compliance_report_YYYYMMDD.pdf: gate verdicts, discovery, parity with evidence, "
                    "scaffolded modules, tests, images and digests, PMMG policy, secret scan, KYC flag, lineage "
                    "from the Dagster instance and the sha256 of every artifact.",
    )

    def compliance_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult[Any]:
        nexus: NexusConfig = context.resources.nexus
        git: GitRepo = context.resources.git
        settings = nexus.settings()
        graph = asset_graph()
        with nexus.hold_workdir(context):  # one writer per working copy
            pmmg_images = recorded_pmmg_images(context.instance, settings)
            policy = policy_fingerprint(settings.repo, pmmg_images)
            kept = kept_materialization(context.instance, graph, COMPLIANCE_REPORT)
            if kept is not None and kept.get("policy") != policy:  # the lock, a job or an image verdict changed
                context.log.info("compliance report: the PMMG policy's inputs changed: made again")
                kept = None
            links = EvidenceLinks.of(settings)
            per_service = service_table_metadata(recorded_manifest(settings.workdir), links)
            if kept is not None:
                context.log.info(f"compliance report {kept['path']} is fresh: left as it is")
                return dg.MaterializeResult(asset_key=COMPLIANCE_REPORT,
                                            data_version=dg.DataVersion(str(kept["sha256"])),
                                            metadata={**{k: v for k, v in kept.items() if k not in LINKED},
                                                      **links.entry("", kept["path"]), **per_service, "remade": False})
            # Loaded here, not with the definitions: pandas, reportlab (and matplotlib, when a chart is
            # drawn) take most of a second to import, which every nexus-agent start would pay.
            from nexus_assets.compliance.charts import ChartCache
            from nexus_assets.compliance.data import assemble
            from nexus_assets.compliance.layout import render

            today = datetime.now(UTC).date()
            rows = lineage_rows(context.instance, graph, ancestors(graph, COMPLIANCE_REPORT))
            data = assemble(settings, commit=git.revision(), lineage=rows, run_id=context.run.run_id, today=today,
                            pmmg_images=pmmg_images)
            _, values = env_secrets(settings.repo, _public_names(settings) | set(data.images["service"]))
            charts = ChartCache(settings.cache / "charts")
            pdf = render(data, lambda text: mask_values(text, values), charts)
            path = settings.workdir / dated(COMPLIANCE_REPORT_FILE, today)
            write_atomic(path, pdf)
            context.log.info(f"compliance report {path}: verdict {data.verdict}; "
                             f"{data.secrets.found} secret value(s) found in outputs; charts drawn: "
                             f"{', '.join(charts.drawn) or 'none (kept from an earlier report)'}")
            return dg.MaterializeResult(
                asset_key=COMPLIANCE_REPORT, data_version=dg.DataVersion(file_sha256(path)),
                metadata={**report_metadata(path, links), **per_service, "verdict": data.verdict, "remade": True,
                          "secrets_found": data.secrets.found, "files_scanned": data.secrets.files_scanned,
                          "services": len(data.images), "policy": policy,
                          # what the gate looks for when it reads the PDF back
                          "gates": [g.name for g in data.gates],
                          "contents": next(g.detail for g in data.gates if g.name == "compliance report"),
                          "contents_passed": next(bool(g.passed) for g in data.gates if g.name == "compliance report")},
            )

    gate = Check(REPORT_GATE, lambda context: compliance_report_gate(context, context.resources.nexus))
    return Part(spec, compliance_report, (gate, *PMMG_CHECKS))


def compliance_report_gate(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.AssetCheckResult:
    """The report's own gate (REPORT_GATE)."""
    settings = nexus.settings()
    metadata = latest_metadata(context.instance, COMPLIANCE_REPORT)
    path = Path(str(metadata.get("path") or ""))
    problems = []
    if not path.is_file():
        problems.append(f"{path or 'the compliance report'} does not exist")
    elif path.read_bytes()[:5] != b"%PDF-" or file_sha256(path) != metadata.get("sha256"):
        problems.append(f"{path} is not the PDF recorded (sha256 differs)")
    else:
        problems += contents_problems(path, metadata)
    env_files, values = env_secrets(settings.repo, _public_names(settings))
    files = [*artifact_files(settings), *([path] if path.is_file() else [])]
    scan = scan_files(files, values, root=settings.workdir, env_files=env_files)
    if scan.found:
        problems.append(f"{scan.found} .env secret value(s) found in: {', '.join(sorted(scan.findings))}")
    return dg.AssetCheckResult(
        asset_key=COMPLIANCE_REPORT, check_name=REPORT_GATE.name, passed=not problems,
        description="; ".join(problems) or f"{path.name} present; {scan.values} secret value(s) searched in "
                                           f"{scan.files_scanned} output file(s): none found",
        metadata={"secrets_found": scan.found, "files_scanned": scan.files_scanned},
    )


# the check is named as its function
REPORT_GATE = dg.AssetCheckSpec(compliance_report_gate.__name__, asset=COMPLIANCE_REPORT, blocking=True,
                                description="Guide gate: the compliance PDF exists, is the file recorded, holds every "
                                            "section and every gate with its evidence (read back from the PDF), and "
                                            "no .env secret value is in any output under reports/ and artifacts/.")
