"""core/one_step.py on a real Dagster instance: parts made in order in one step, each its own
asset with its own checks and lineage; a blocking check that fails stops what depends on its
asset inside the step, fails the step, and Dagster skips the steps after it; a check selected
alone is evaluated alone."""

from __future__ import annotations

import dagster as dg

from nexus_assets.core.one_step import Check, Part, one_step

FIRST, SECOND, BESIDE, AFTER = (dg.AssetKey(k) for k in ("first", "second", "beside", "after"))


def _defs(first_passes: bool, made: list[str]) -> dg.Definitions:
    def make(key: dg.AssetKey, version: str):
        def body(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            made.append(key.to_user_string())
            return dg.MaterializeResult(asset_key=key, data_version=dg.DataVersion(version))
        return body

    def verdict(key: dg.AssetKey, name: str, passed: bool):
        return lambda context: dg.AssetCheckResult(asset_key=key, check_name=name, passed=passed,
                                                   description=f"{name} {'passed' if passed else 'failed'}")

    gate = dg.AssetCheckSpec("gate", asset=FIRST, blocking=True)
    second_gate = dg.AssetCheckSpec("second_gate", asset=SECOND, blocking=True)
    step = one_step("documents", [
        Part(dg.AssetSpec(FIRST), make(FIRST, "f1"), (Check(gate, verdict(FIRST, "gate", first_passes)),)),
        Part(dg.AssetSpec(SECOND, deps=[FIRST]), make(SECOND, "s1"), (Check(second_gate, verdict(SECOND, "second_gate", True)),)),
        Part(dg.AssetSpec(BESIDE), make(BESIDE, "b1")),  # depends on nothing in the step: made whatever fails
    ], set())

    @dg.asset(key=AFTER, deps=[SECOND])
    def after() -> None:
        made.append("after")

    return dg.Definitions(assets=[step, after])


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, **selection) -> dg.ExecuteInProcessResult:
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, raise_on_error=False,
                                                                          **selection)


def test_the_parts_are_one_step_each_its_own_asset_checks_and_lineage():
    made: list[str] = []
    defs = _defs(True, made)
    with dg.instance_for_test() as instance:
        result = _run(defs, instance)
        assert result.success
        assert made == ["first", "second", "beside", "after"]
        steps = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
        assert steps == {"documents", "after"}
        assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {"gate": True,
                                                                                          "second_gate": True}
        second = instance.get_asset_records([SECOND])[0].asset_entry.last_materialization
        provenance = dg.DataProvenance.from_tags(second.asset_materialization.tags)
        assert provenance.input_data_versions == {FIRST: dg.DataVersion("f1")}


def test_a_blocking_check_that_fails_stops_what_depends_on_its_asset_and_the_steps_after():
    made: list[str] = []
    defs = _defs(False, made)
    with dg.instance_for_test() as instance:
        result = _run(defs, instance)
        assert not result.success
        assert made == ["first", "beside"], "second depends on first; beside does not; after is skipped"
        [failure] = result.get_step_failure_events()
        assert failure.step_key == "documents"
        assert failure.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
        assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {"gate": False}
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {FIRST, BESIDE}


def test_a_part_or_a_check_selected_alone_is_made_or_evaluated_alone():
    made: list[str] = []
    defs = _defs(True, made)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        check = job.get_subset(asset_selection=set(), asset_check_selection={dg.AssetCheckKey(SECOND, "second_gate")})
        result = check.execute_in_process(instance=instance, raise_on_error=False)
        assert result.success and made == []
        assert [e.check_name for e in result.get_asset_check_evaluations()] == ["second_gate"]
        result = _run(defs, instance, asset_selection=[SECOND])
        assert result.success and made == ["second"]
        assert [e.check_name for e in result.get_asset_check_evaluations()] == ["second_gate"]
