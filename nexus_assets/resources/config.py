"""Where a run reads and writes: the settings as a Dagster resource."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg

from nexus_assets.core.keys import INVOCATION_TAG
from nexus_assets.core.settings import Settings
from nexus_assets.core.workdir_lock import workdir_lock

# A step of another run waits this long for the working copy before it fails naming the holder.
STEP_LOCK_WAIT_SECONDS = 600.0


class NexusConfig(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """Where the run reads and writes; bound from Settings in definitions.py."""

    repo: str
    workdir: str
    registry: str
    version: str
    max_parallel: int = 4
    test_timeout: float = 120.0  # seconds per test stage and service; a hung stage fails alone
    compose_file: str = ""  # the stack compose file (NEXUS_COMPOSE_FILE); "": the default choice
    build_timeout: float = 1800.0  # seconds per image build; a longer build is stopped and fails alone
    version_auto: bool = False  # no version given: version is the next patch after the last release tag
    signing_key: str = ""  # the provenance signing key's path (NEXUS_SIGNING_KEY); "": under the working copy
    registry_cache: bool = True  # the registry as a shared build cache (NEXUS_REGISTRY_CACHE)
    evidence_url: str = ""  # the evidence server's base URL (NEXUS_EVIDENCE_URL); "": the default
    # Set in a UI launch's run config: the staging deploy follows the run once its release is made
    # (automation/deploy_sensor.py); nexus-agent deploys itself (--deploy-staging).
    deploy_staging: bool = False

    def settings(self) -> Settings:
        return Settings(
            repo=Path(self.repo), workdir=Path(self.workdir), registry=self.registry,
            version=self.version, max_parallel=self.max_parallel, test_timeout=self.test_timeout,
            compose_file=self.compose_file or None,
            build_timeout=self.build_timeout, version_auto=self.version_auto,
            signing_key=self.signing_key or None, registry_cache=self.registry_cache,
            evidence_url=self.evidence_url,
        )

    def hold_workdir(self, context: dg.AssetExecutionContext) -> AbstractContextManager[None]:
        """The working copy held for this step: a no-op inside the nexus-agent invocation that
        holds it already, a bounded wait behind any other run."""
        invocation = context.run.tags.get(INVOCATION_TAG) or context.run.run_id
        return workdir_lock(Path(self.workdir), invocation, wait_seconds=STEP_LOCK_WAIT_SECONDS)
