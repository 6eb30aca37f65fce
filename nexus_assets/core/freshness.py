"""Whether a file-writing asset selected in a run must be made again: Dagster holds it stale,
or the file its last materialization names is gone or altered. The release documents use it
so that a run which selects them (every `nexus-agent run` does) remakes only the stale ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.lineage import stale_images


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    """Plain metadata values of key's newest materialization ({} when it has none)."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    return {k: getattr(v, "value", v) for k, v in (materialization.metadata if materialization else {}).items()}


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
