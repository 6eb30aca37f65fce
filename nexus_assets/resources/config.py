"""Where a run reads and writes: the settings as a Dagster resource."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import fields
from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.keys import INVOCATION_TAG
from nexus_assets.core.settings import Settings, default_values
from nexus_assets.core.workdir_lock import workdir_lock

# A step of another run waits this long for the working copy before it fails naming the holder.
STEP_LOCK_WAIT_SECONDS = 600.0


_DEFAULT = default_values()


def _config(value: object) -> object:
    """A Settings value as Dagster config holds it: a path as text, None (unset) as ""."""
    return "" if value is None else str(value) if isinstance(value, Path) else value


class NexusConfig(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """Where the run reads and writes: core/settings.Settings as Dagster config, field for field.
    The defaults are Settings' own (default_values); `of` and `settings` convert between the two,
    and tests/core/test_settings_one_truth.py holds the field lists equal."""

    repo: str
    workdir: str
    registry: str
    version: str
    max_parallel: int = _DEFAULT["max_parallel"]
    test_timeout: float = _DEFAULT["test_timeout"]
    compose_file: str = _config(_DEFAULT["compose_file"])  # type: ignore[assignment]  # "": the default choice
    build_timeout: float = _DEFAULT["build_timeout"]
    signing_key: str = _config(_DEFAULT["signing_key"])  # type: ignore[assignment]  # "": under the working copy
    lock_wait: float = _DEFAULT["lock_wait"]
    version_auto: bool = _DEFAULT["version_auto"]
    registry_cache: bool = _DEFAULT["registry_cache"]
    secrets_file: str = _config(_DEFAULT["secrets_file"])  # type: ignore[assignment]
    evidence_url: str = _DEFAULT["evidence_url"]  # "": the default (NEXUS_EVIDENCE_URL)
    # Set in a UI launch's run config: the staging deploy follows the run once its release is made
    # (automation/deploy_sensor.py); nexus-agent deploys itself (--deploy-staging).
    deploy_staging: bool = _DEFAULT["deploy_staging"]

    @classmethod
    def of(cls, settings: Settings) -> NexusConfig:
        """The resource for these settings (definitions.py binds it)."""
        values: dict[str, Any] = {f.name: _config(getattr(settings, f.name)) for f in fields(Settings)}
        return cls(**values)

    def settings(self) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(Settings):
            value = getattr(self, f.name)
            # a path field back to a Path, an optional one's "" back to None (unset)
            values[f.name] = Path(value) if f.type in ("Path", Path) else (value or None) if f.default is None else value
        return Settings(**values)

    def hold_workdir(self, context: dg.AssetExecutionContext) -> AbstractContextManager[None]:
        """The working copy held for this step: a no-op inside the nexus-agent invocation that
        holds it already, a bounded wait behind any other run."""
        invocation = context.run.tags.get(INVOCATION_TAG) or context.run.run_id
        return workdir_lock(Path(self.workdir), invocation, wait_seconds=STEP_LOCK_WAIT_SECONDS)
