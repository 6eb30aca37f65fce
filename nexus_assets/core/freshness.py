"""Whether a file-writing asset selected in a run must be made again: Dagster holds it stale,
or the file its last materialization names is gone or altered. The release documents use it
so that a run which selects them (every `nexus-agent run` does) remakes only the stale ones;
the attest steps and `nexus-agent run` use it to tell which services' SBOM and provenance are due."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import provenance_key, sbom_key
from nexus_assets.core.lineage import AssetRecords, may_be_stale, stale_images


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


def file_intact(artifacts: Path, recorded: dict[str, Any] | None) -> bool:
    """Whether the file a record names (its `path`, absolute or under artifacts) is still there
    with the recorded sha256."""
    if not recorded or not recorded.get("path"):
        return False
    path = artifacts / str(recorded["path"])
    return path.is_file() and file_sha256(path) == recorded.get("sha256")


def attestations_due(asset_graph: Any, instance: dg.DagsterInstance, names: Iterable[str], artifacts: Path,
                     records: AssetRecords | None = None) -> list[str]:
    """The services whose SBOM or provenance Dagster could hold stale or missing (may_be_stale:
    no record, another code version, an input with a new data version) or whose file is gone or
    altered: the ones the attest steps would make. A service whose image is rebuilt in the run is
    due too, but only the caller knows that."""
    records = records or AssetRecords(instance)
    keys = {k(n): n for n in names for k in (sbom_key, provenance_key) if asset_graph.has(k(n))}
    due = {keys[k] for k in may_be_stale(asset_graph, instance, list(keys), records)}
    for record in records.get([k for k, n in keys.items() if n not in due]):
        last = record.asset_entry.last_materialization
        materialization = last.asset_materialization if last else None
        metadata = {k: getattr(v, "value", v) for k, v in (materialization.metadata if materialization else {}).items()}
        if not file_intact(artifacts, metadata):
            due.add(keys[record.asset_entry.asset_key])
    return sorted(due)
