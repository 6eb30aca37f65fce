"""Assets and their checks made in one Dagster step.

Every step of a run pays Dagster's fixed cost: its start and success events, its outputs, the
versions of its inputs read before it starts. A release document and each of its gates are
short, so as a step each that cost was much of their time. A Part is one asset and its checks;
`one_step` makes a subsettable multi-asset of parts run in order: each selected asset is made,
then its selected checks (each check alone when only it is selected, as the UI's "Execute" on
one check asks). A part whose asset inside the step had a blocking check fail is not made, as
Dagster would skip a step after it; Dagster fails the step at its end
(DagsterAssetCheckFailedError), so the steps after it are skipped as before. The asset keys,
check names, lineage and data versions are each asset's own, as when each was a step."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class Check:
    """One check of a part: its spec, and its evaluation (an AssetCheckResult naming its check)."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[dg.AssetExecutionContext], dg.AssetCheckResult]


@dataclass(frozen=True)
class Part:
    """One asset of the step: its spec, how it is made (a MaterializeResult naming its key) and
    its checks, evaluated in this order after it."""

    spec: dg.AssetSpec
    make: Callable[[dg.AssetExecutionContext], dg.MaterializeResult[Any]]
    checks: tuple[Check, ...] = ()


def blocked(result: dg.AssetCheckResult, spec: dg.AssetCheckSpec) -> bool:
    """Whether this result of that check stops what depends on its asset."""
    return spec.blocking and not result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def one_step(name: str, parts: Sequence[Part], resource_keys: set[str]) -> dg.AssetsDefinition:
    """The parts as one multi-asset named name (its step key), in the order given (each part
    after those it depends on). Subsettable, so each output may be left out: Dagster skips what
    depends on an asset the step did not make."""
    keys = {p.spec.key for p in parts}

    @dg.multi_asset(name=name, specs=[p.spec for p in parts], check_specs=[c.spec for p in parts for c in p.checks],
                    can_subset=True, required_resource_keys=resource_keys)
    def step(context: dg.AssetExecutionContext) -> Iterator[Any]:
        stopped: dict[dg.AssetKey, str] = {}  # asset -> the blocking check of this step that stops it
        for part in parts:
            key = part.spec.key
            upstream = [stopped[d.asset_key] for d in part.spec.deps if d.asset_key in keys and d.asset_key in stopped]
            if upstream:
                stopped[key] = upstream[0]
                if key in context.selected_asset_keys:
                    context.log.info(f"{key.to_user_string()} not made: blocking check {upstream[0]} failed")
                continue
            if key in context.selected_asset_keys:
                yield part.make(context)
            for check in part.checks:
                if check.spec.key in context.selected_asset_check_keys:
                    result = check.evaluate(context)
                    yield result
                    if blocked(result, check.spec):
                        stopped.setdefault(key, f"{key.to_user_string()}:{check.spec.name}")

    return step
