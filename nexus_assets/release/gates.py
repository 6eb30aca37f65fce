"""The release gates, as Dagster last judged them: every asset check of the graph (the guide's
gates: parity, each service's lint, unit and integration tests, e2e, the manifest, and the
package and PDF gates once they are in the graph), read in one query.

The parity gate is read from the report it judges (reports/discrepancy_report.json), which is
upstream of the release: its check is not blocking in Dagster's sense (images build after a
failed parity gate, as the guide wants), so nothing orders its step before the release's."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE, DISCREPANCY_REPORT, DISCREPANCY_REPORT_FILE
from nexus_assets.core.settings import Settings
from nexus_assets.policy.waivers import by_line
from nexus_assets.release.notes import Gate

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import AssetCheckExecutionRecord, BaseAssetGraph

PARITY_GATE = dg.AssetCheckKey(DISCREPANCY_REPORT, "critical_modules_gate")


def _name(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def _parity(settings: Settings) -> Gate:
    path = settings.workdir / DISCREPANCY_REPORT_FILE
    try:
        gate = read_json(path)["gate"]
    except (OSError, ValueError, KeyError, TypeError):
        return Gate(_name(PARITY_GATE), False, f"{path} missing or unreadable")
    return Gate(_name(PARITY_GATE), bool(gate.get("passed")), str(gate.get("message", "")))


def _judged(key: dg.AssetCheckKey, record: AssetCheckExecutionRecord | None) -> Gate:
    if record is None:
        return Gate(_name(key), False, "never evaluated")
    evaluation = record.evaluation
    status = record.status.value  # PLANNED | SUCCEEDED | FAILED
    if status == "PLANNED" or evaluation is None:
        return Gate(_name(key), False, "planned in a run that did not evaluate it", run_id=record.run_id)
    return Gate(_name(key), bool(evaluation.passed), evaluation.description or "",
                severity=evaluation.severity.value, run_id=record.run_id)


def release_gates(instance: dg.DagsterInstance, graph: BaseAssetGraph[Any], settings: Settings,
                  exclude: tuple[dg.AssetKey, ...] = ()) -> list[Gate]:
    """Every check's last verdict, sorted by name; the checks of the exclude assets (the
    release's own) are left out."""
    keys = [key for key in graph.asset_check_keys if key.asset_key not in exclude and key != PARITY_GATE]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    waived = _waived(settings)
    gates = [_waive(_judged(key, records.get(key)), key, waived) for key in keys]
    if PARITY_GATE in graph.asset_check_keys:
        gates.append(_parity(settings))
    return sorted(gates, key=lambda g: g.name)


# The per-service assets whose checks a waiver of that service covers.
_PER_SERVICE = ("image", "pushed", "sbom", "provenance")


def _waived(settings: Settings) -> dict[str, dict[str, Any]]:
    """{service: its waiver} for the services the manifest says the release goes without."""
    try:
        waived = read_json(settings.workdir / ARTIFACTS_MANIFEST_FILE).get("waived") or []
    except (OSError, ValueError, AttributeError):
        return {}  # no manifest: its own gate says so
    return {w["service"]: w for w in waived if isinstance(w, dict) and w.get("service")}


def _waive(gate: Gate, key: dg.AssetCheckKey, waived: dict[str, dict[str, Any]]) -> Gate:
    """A failed check of a waived service's own assets: shown, waived, never blocking."""
    path = key.asset_key.path
    waiver = waived.get(path[-1]) if len(path) == 2 and path[0] in _PER_SERVICE else None
    if gate.passed or waiver is None:
        return gate

    return replace(gate, severity="WAIVED",
                   detail=f"waived until {waiver['until']} ({waiver['reason']}; {by_line(waiver)}): {gate.detail}")
