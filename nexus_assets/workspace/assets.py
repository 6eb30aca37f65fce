"""Step A as an asset: the target repository synced into the working copy."""


import dagster as dg

from nexus_assets.core.hashing import workspace_version
from nexus_assets.resources import NexusConfig
from nexus_assets.workspace.sync import sync_workspace


@dg.asset(
    group_name="prepare", kinds={"python"},
    description="Step A: the target repository synced into the working copy (reports/, artifacts/, output/ made).",
)
# Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
def workspace(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:  # type: ignore[type-arg]
    settings = nexus.settings()
    with nexus.hold_workdir(context):  # one writer per working copy
        result = sync_workspace(settings.repo, settings.workdir, settings.compose_file)
        context.log.info(f"workspace {settings.workdir}: {result.files} files, {result.copied} copied, "
                         f"{result.removed} removed")
        if result.retired:
            context.log.info(f"scaffolds replaced by the repository's own service: {', '.join(result.retired)}")
        for skipped in result.skipped:
            context.log.warning(f"{skipped}: not a regular file; not copied into the working copy "
                                "(replace it with a file, or remove it)")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(workspace_version(settings.repo)),
            metadata={"repo": str(settings.repo), "workdir": str(settings.workdir), "files": result.files,
                      "copied": result.copied, "removed": result.removed,
                      "scaffolds_retired": list(result.retired)},
        )
