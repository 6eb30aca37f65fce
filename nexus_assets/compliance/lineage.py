"""The lineage section, read from the Dagster instance: for every asset the report is made from
(its ancestors in the asset graph), the run that made its current version, that data version,
its code version, and the data versions of what it was made from, as Dagster recorded them.

Observed assets (a service's sources, a base image) have no run: their row gives the data
version Dagster holds now, from their last observation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.lineage import AssetRecords, latest_observations

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph


@dataclass(frozen=True)
class LineageRow:
    asset: str
    kind: str  # materialized | observed | never made
    run_id: str
    at: str  # ISO time of the event, UTC
    data_version: str
    code_version: str
    inputs: list[tuple[str, str]]  # (upstream asset, data version recorded when this version was made)
    path: str  # the file the asset wrote, when its metadata names one


def ancestors(graph: BaseAssetGraph[Any], key: dg.AssetKey) -> list[dg.AssetKey]:
    """Every asset key upstream of key in the graph, sorted by name."""
    seen: set[dg.AssetKey] = set()
    todo = list(graph.get(key).parent_keys)
    while todo:
        parent = todo.pop()
        if parent in seen or not graph.has(parent):
            continue
        seen.add(parent)
        todo.extend(graph.get(parent).parent_keys)
    return sorted(seen, key=lambda k: k.to_user_string())


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _path(metadata: dict[str, Any]) -> str:
    for name in ("path", "log"):
        value = metadata.get(name)
        if value is not None:
            return str(getattr(value, "value", value) or getattr(value, "path", ""))
    return ""


def lineage_rows(instance: dg.DagsterInstance, graph: BaseAssetGraph[Any], keys: list[dg.AssetKey]) -> list[LineageRow]:
    """One row per key, in the order given (batch reads: one query for every record, two for
    the newest observation of every observed asset that was never materialized)."""
    records = AssetRecords(instance).latest(keys)
    observations = latest_observations(instance, [k for k in keys if graph.get(k).is_observable])
    rows = []
    for key in keys:
        last = records.get(key)
        if last is not None:
            provenance = dg.DataProvenance.from_tags(last.tags)
            inputs = sorted((k.to_user_string(), v.value) for k, v in (provenance.input_data_versions
                                                                    if provenance else {}).items())
            rows.append(LineageRow(key.to_user_string(), "materialized", last.run_id, _when(last.timestamp),
                                   last.tags.get("dagster/data_version", ""),
                                   provenance.code_version if provenance else "", inputs, _path(last.metadata)))
            continue

        if key in observations:
            event = observations[key].event_log_entry
            observation = event.asset_observation
            version = (observation.tags or {}).get("dagster/data_version", "") if observation else ""
            rows.append(LineageRow(key.to_user_string(), "observed", event.run_id or "", _when(event.timestamp),
                                   version, "", [], ""))
            continue
        rows.append(LineageRow(key.to_user_string(), "never made", "", "", "", "", [], ""))
    return rows
