"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.
Target, workdir, registry and version come from NEXUS_REPO, NEXUS_WORKDIR, REGISTRY, VERSION."""

from nexus_assets.definitions import build_definitions

defs = build_definitions()
