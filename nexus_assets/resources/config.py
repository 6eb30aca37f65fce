"""Where a run reads and writes: the settings as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from nexus_assets.core.settings import Settings


class NexusConfig(dg.ConfigurableResource):
    """Where the run reads and writes; bound from Settings in definitions.py."""

    repo: str
    workdir: str
    registry: str
    version: str
    max_parallel: int = 4
    test_timeout: float = 120.0  # seconds per test stage and service; a hung stage fails alone

    def settings(self):
        return Settings(
            repo=Path(self.repo), workdir=Path(self.workdir), registry=self.registry,
            version=self.version, max_parallel=self.max_parallel, test_timeout=self.test_timeout,
        )
