"""Whether a file-writing asset selected in a run must be made again: Dagster holds it stale,
or the file its last materialization names is gone or altered. The release documents use it
so that a run which selects them (every `nexus-agent run` does) remakes only the stale ones;
the attest steps use it to tell which services' SBOM and provenance are due."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.lineage import latest_metadata, stale_images


def kept_materialization(instance: dg.DagsterInstance, graph: Any, key: dg.AssetKey) -> dict[str, Any] | None:
    """The metadata of key's last materialization when Dagster holds key fresh (same code
    version, same input data versions) and the file it names (metadata `path`) still has the
    recorded sha256; None when it must be made again."""
    if stale_images(graph, instance, [key]):
        return None
    metadata = latest_metadata(instance, key)
    path = Path(str(metadata.get("path") or ""))
    if not metadata or not path.is_file() or file_sha256(path) != metadata.get("sha256"):
        return None
    return metadata


def file_intact(artifacts: Path, recorded: dict[str, Any] | None) -> bool:
    """Whether the file a record names (its `path`, absolute or under artifacts) is still there
    with the recorded sha256."""
    if not recorded or not recorded.get("path"):
        return False
    path = artifacts / str(recorded["path"])
    return path.is_file() and file_sha256(path) == recorded.get("sha256")
