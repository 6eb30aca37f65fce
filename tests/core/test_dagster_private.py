"""Every private Dagster name nexus-assets uses (core/dagster_private.PRIVATE) still exists with
the parameters it is called with: a Dagster upgrade that moves or changes one fails here, naming
it, instead of in a run. And nothing outside that module imports Dagster's private packages."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.core import dagster_private
from nexus_assets.core.dagster_private import (
    PRIVATE,
    newest_event_ids,
    prefetch_input_versions,
    private,
    sql_storage,
    stale_statuses,
)

PACKAGE = Path(dagster_private.__file__).resolve().parents[1]
# The parameters called by name or position in dagster_private.py, per private callable.
CALLED = {
    "CachingStaleStatusResolver": ["instance", "asset_graph", "loading_context", "instance_queryer"],
    "CachingInstanceQueryer": ["instance", "asset_graph", "loading_context"],
    "CachingInstanceQueryer.prefetch_asset_records": ["self", "asset_keys"],
    "SqlEventLogStorage._add_assets_wipe_filter_to_query": ["self", "query", "assets_details", "asset_keys"],
    "SqlEventLogStorage._get_assets_details": ["self", "asset_keys"],
    "SqlEventLogStorage.index_connection": ["self"],
    "DataVersionCache._fetch_input_asset_version_info": ["self", "asset_keys"],
}
METHODS = {"CachingStaleStatusResolver": ["get_status", "get_stale_root_causes", "get_current_data_version"],
           "LoadingContext": ["instance", "loaders"], "StaleStatus": ["MISSING", "STALE"],
           "SqlEventLogStorageTable": ["c"],
           "StepExecutionContext": ["input_asset_records"]}


@pytest.mark.parametrize("name", sorted(PRIVATE))
def test_each_private_name_resolves(name):
    try:
        private(name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"Dagster {dg.__version__} has no {PRIVATE[name]} ({exc}): update core/dagster_private.py")


@pytest.mark.parametrize("name", sorted(CALLED))
def test_each_private_call_takes_the_parameters_we_pass(name):
    found = list(inspect.signature(private(name)).parameters)
    if not name.count("."):  # a class: its __init__, without self
        found = list(inspect.signature(private(name).__init__).parameters)[1:]
    missing = [p for p in CALLED[name] if p not in found]
    assert not missing, f"Dagster {dg.__version__}: {PRIVATE[name]} lost parameter(s) {missing}; it takes {found}"
    if name.count("."):
        assert found[:len(CALLED[name])] == CALLED[name], f"{PRIVATE[name]}: positional order is now {found}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_private_member_used_exists(name):
    thing = private(name)
    for member in METHODS[name]:
        if member == "c":
            assert hasattr(thing, "c") and {"id", "event", "asset_key", "dagster_event_type"} <= set(thing.c.keys())
        else:
            assert hasattr(thing, member), f"Dagster {dg.__version__}: {PRIVATE[name]} has no {member}"


def test_the_adapter_answers_on_a_real_instance():
    """The calls themselves, on Dagster's SQLite storage: the newest event ids and the resolver."""
    source = dg.AssetKey(["source", "a"])

    @dg.observable_source_asset(key=source)
    def observed():
        return dg.DataVersion("1")

    @dg.asset(key=["image", "a"], deps=[source], code_version="1")
    def image():
        return dg.MaterializeResult(data_version=dg.DataVersion("i"))

    defs = dg.Definitions(assets=[observed, image])
    graph = defs.resolve_asset_graph()
    with dg.instance_for_test() as instance:
        storage = sql_storage(instance)
        assert storage is not None
        assert stale_statuses(graph, instance, [image.key]) == {image.key: ("missing", [])}
        for version in ("1", "2"):
            instance.report_runless_asset_event(dg.AssetObservation(source, tags={"dagster/data_version": version}))
        defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, asset_selection=[image.key])
        assert stale_statuses(graph, instance, [image.key]) == {}
        instance.report_runless_asset_event(dg.AssetObservation(source, tags={"dagster/data_version": "3"}))
        assert stale_statuses(graph, instance, [image.key]) == {
            image.key: ("stale", [(source, "3", "has a new data version")])}
        ids = newest_event_ids(storage, [source], dg.DagsterEventType.ASSET_OBSERVATION)
        newest = instance.fetch_observations(source, limit=1).records[0]
        assert ids == {source: newest.storage_id}


def test_no_other_module_imports_dagsters_private_packages():
    private_import = re.compile(r"^\s*(from|import)\s+dagster\._", re.M)
    found = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if p.name != "dagster_private.py" and private_import.search(p.read_text(encoding="utf-8"))]
    assert not found, f"import Dagster's private modules through core/dagster_private.py only: {found}"


def test_the_versions_of_a_steps_own_outputs_are_read_in_one_query_and_recorded_as_provenance():
    """prefetch_input_versions on a real run: an output recorded earlier in the step is read back
    (with its new version) before the output made from it is recorded, and that output's
    provenance names it, as when Dagster reads it itself."""
    first, second = dg.AssetKey("first"), dg.AssetKey("second")
    seen: dict = {}

    @dg.multi_asset(specs=[dg.AssetSpec(first), dg.AssetSpec(second, deps=[first])])
    def both(context):
        yield dg.MaterializeResult(asset_key=first, data_version=dg.DataVersion("v1"))
        prefetch_input_versions(context, [first])
        seen.update(context.get_step_execution_context().input_asset_records or {})
        yield dg.MaterializeResult(asset_key=second, data_version=dg.DataVersion("v2"))

    with dg.instance_for_test() as instance:
        result = dg.Definitions(assets=[both]).resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance)
        assert result.success
        assert seen[first] is not None and seen[first].data_version == dg.DataVersion("v1")
        record = instance.get_asset_records([second])[0].asset_entry.last_materialization
        provenance = dg.DataProvenance.from_tags(record.asset_materialization.tags)
        assert provenance.input_data_versions == {first: dg.DataVersion("v1")}
