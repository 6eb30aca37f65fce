"""Step I as an asset: reports/deployment_package_YYYYMMDD.tar.gz, and its blocking gate (the
package reads back whole and every checksum verifies).

Made again only when Dagster holds it stale (the compliance report, the manifest, the reports
or the repository changed, or its code version did) or its file is gone or altered; otherwise
left as it is and recorded again under the same data version."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.fileio import read_json, write_atomic
from nexus_assets.core.freshness import kept_materialization
from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST,
    ARTIFACTS_MANIFEST_FILE,
    COMPLIANCE_REPORT,
    DEPLOYMENT_PACKAGE,
    DISCOVERY_PARSED,
    DISCOVERY_PARSED_FILE,
    DISCREPANCY_REPORT,
    WORKSPACE,
)
from nexus_assets.core.lineage import latest_metadata
from nexus_assets.core.metadata import LINKED, EvidenceLinks, report_metadata, service_table_metadata
from nexus_assets.core.one_step import Check, Part
from nexus_assets.package.archive import PackageError, build_tar_gz, verify_tar_gz
from nexus_assets.package.content import package_content
from nexus_assets.policy.secret_scan import env_secrets
from nexus_assets.resources import GitRepo, NexusConfig

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph


# Bump when the package's layout or scripts change: every package turns stale.
PACKAGE_CODE_VERSION = "package-2"  # 2: gzip level 6


def _read(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def deployment_package_part(asset_graph: "Callable[[], BaseAssetGraph[Any]]") -> Part:
    """deployment_package and its gate, one part of the release documents' step (core/one_step.py)."""
    spec = dg.AssetSpec(
        key=DEPLOYMENT_PACKAGE,
        deps=[COMPLIANCE_REPORT, ARTIFACTS_MANIFEST, DISCOVERY_PARSED, DISCREPANCY_REPORT, WORKSPACE],
        group_name="package", kinds={"tar"}, code_version=PACKAGE_CODE_VERSION,
        description="reports/deployment_package_YYYYMMDD.tar.gz, reproducible: docker-compose.full.yml with every "
                    "released service pinned by registry digest plus the repository's infrastructure, "
                    "deployment/.env.template (keys only), deploy/audit/rollback scripts, reports, manifest, SBOMs, "
                    "provenance, public key, SHA256SUMS.",
    )

    def deployment_package(context: dg.AssetExecutionContext) -> dg.MaterializeResult[Any]:
        nexus: NexusConfig = context.resources.nexus
        git: GitRepo = context.resources.git
        settings = nexus.settings()
        with nexus.hold_workdir(context):  # one writer per working copy
            kept = kept_materialization(context.instance, asset_graph(), DEPLOYMENT_PACKAGE)
            links = EvidenceLinks.of(settings)
            manifest = _read(settings.workdir / ARTIFACTS_MANIFEST_FILE)
            if kept is not None:
                context.log.info(f"deployment package {kept['path']} is fresh: left as it is")
                rows = service_table_metadata(manifest, links, set(kept.get("pinned") or []))
                return dg.MaterializeResult(asset_key=DEPLOYMENT_PACKAGE,
                                            data_version=dg.DataVersion(str(kept["sha256"])),
                                            metadata={**{k: v for k, v in kept.items() if k not in LINKED},
                                                      **links.entry("", kept["path"]), **rows, "remade": False})
            discovery = _read(settings.workdir / DISCOVERY_PARSED_FILE)
            pdf = latest_metadata(context.instance, COMPLIANCE_REPORT).get("path")
            public = {str(i.get("service")) for i in manifest.get("images") or []}
            _, secrets = env_secrets(settings.repo, public)
            content = package_content(settings, manifest, discovery, Path(str(pdf)) if pdf else None,
                                      commit=git.revision(), day=datetime.now(UTC).date(), secrets=secrets)
            data = build_tar_gz(content.name, content.files, content.mtime)
            path = settings.reports / f"{content.name}.tar.gz"
            write_atomic(path, data)
            compose = content.compose
            # said the same way in the log and the metadata: what the package carries, then what it does not
            infrastructure = ", ".join(sorted(compose.infrastructure)) or "none declared"
            context.log.info(f"deployment package {path}: {len(compose.released)} service(s) pinned by digest, "
                             f"{len(compose.excluded)} left out, infrastructure {infrastructure}")
            return dg.MaterializeResult(
                asset_key=DEPLOYMENT_PACKAGE, data_version=dg.DataVersion(file_sha256(path)),
                metadata={**report_metadata(path, links), "remade": True, "files": len(content.files) + 1,
                          "released": len(compose.released), "excluded": dg.MetadataValue.json(compose.excluded),
                          "pinned": sorted(compose.released),
                          "infrastructure": infrastructure,
                          "infrastructure_not_declared": ", ".join(compose.infrastructure_missing) or "none",
                          "required_env_keys": ", ".join(content.required_keys) or "none",
                          **service_table_metadata(manifest, links, set(compose.released))},
            )

    return Part(spec, deployment_package, (Check(PACKAGE_GATE, deployment_package_verifies),))


def deployment_package_verifies(context: dg.AssetExecutionContext) -> dg.AssetCheckResult:
    """The package's gate (PACKAGE_GATE)."""
    path = Path(str(latest_metadata(context.instance, DEPLOYMENT_PACKAGE).get("path") or ""))
    if not path.is_file():
        return _verdict(False, f"{path or 'the deployment package'} does not exist")
    try:
        verified = verify_tar_gz(path.read_bytes(), str(path))
    except PackageError as exc:
        return _verdict(False, str(exc))
    return _verdict(True, f"{path.name}: {verified.files} files read back, every checksum verifies",
                    {"files": verified.files})


# the check is named as its function
PACKAGE_GATE = dg.AssetCheckSpec(deployment_package_verifies.__name__, asset=DEPLOYMENT_PACKAGE, blocking=True,
                                 description="Guide gate: the deployment package reads back whole and every file "
                                             "matches SHA256SUMS.")


def _verdict(passed: bool, description: str, metadata: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=DEPLOYMENT_PACKAGE, check_name=PACKAGE_GATE.name, passed=passed,
                               description=description, metadata=metadata)
