"""Dagster's verdict, read fast: may_be_stale never misses an asset Dagster holds stale, and
stale_images gives Dagster's own reasons (fast, no engine: an in-process instance)."""

from __future__ import annotations

import dagster as dg

from nexus_assets.core.dagster_private import sql_storage
from nexus_assets.core.keys import TEST_STAGES
from nexus_assets.core.lineage import (
    UNTESTED_MARK,
    AssetRecords,
    Observation,
    latest_data_versions,
    latest_observations,
    may_be_stale,
    record_changes,
    recorded_images,
    stale_images,
    untested_images,
)

SOURCES = [dg.AssetKey(["source", n]) for n in ("a", "b", "c")]


def _defs(code_version: str = "recipe-1") -> dg.Definitions:
    @dg.multi_observable_source_asset(specs=[dg.AssetSpec(k) for k in SOURCES])
    def sources():
        yield from ()

    @dg.multi_asset(specs=[dg.AssetSpec(["image", k.path[-1]], deps=[k], code_version=code_version, skippable=True)
                           for k in SOURCES], can_subset=True)
    def images(context):
        for key in sorted(context.selected_asset_keys):
            yield dg.MaterializeResult(asset_key=key, data_version=dg.DataVersion("img-" + key.path[-1]))

    return dg.Definitions(assets=[sources, images])


def _observe(instance, versions: dict[str, str]) -> None:
    record_changes(instance, [Observation(dg.AssetKey(["source", n]), v) for n, v in versions.items()])


def test_fast_reading_agrees_with_dagsters_resolver():
    instance = dg.DagsterInstance.ephemeral()
    defs = _defs()
    graph = defs.resolve_asset_graph()
    images = [dg.AssetKey(["image", n]) for n in ("a", "b", "c")]
    _observe(instance, {"a": "1", "b": "1", "c": "1"})
    assert set(may_be_stale(graph, instance, images)) == set(images)  # never built
    assert set(stale_images(graph, instance, images).values()) == {"never built"}

    defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, asset_selection=images[:2])
    assert may_be_stale(graph, instance, images) == [images[2]]
    assert stale_images(graph, instance, images) == {images[2]: "never built"}

    _observe(instance, {"b": "2"})
    assert record_changes(instance, [Observation(SOURCES[0], "1")]) == [], "an unchanged observation is not stored"
    assert may_be_stale(graph, instance, images[:2]) == [images[1]]
    assert stale_images(graph, instance, images[:2]) == {images[1]: "source/b has a new data version"}

    _observe(instance, {"b": "1"})  # the revert: b is what a was built from again
    assert stale_images(graph, instance, images[:2]) == {}

    recipe = _defs("recipe-2").resolve_asset_graph()  # a new recipe: every built image is stale
    assert set(may_be_stale(recipe, instance, images[:2])) == set(images[:2])
    assert set(stale_images(recipe, instance, images[:2]).values()) == {
        "image/a has a new code version", "image/b has a new code version"}


def test_batch_read_of_newest_observations_agrees_with_dagsters_per_key_read():
    """latest_observations reads SQL storage in two queries; it must give what Dagster's own
    per-key read gives: the newest observation of each key, none before a wipe."""
    with dg.instance_for_test() as instance:  # SQLite storage, as nexus-agent uses
        assert sql_storage(instance) is not None
        for version in ("1", "2", "3"):
            _observe(instance, {"a": version, "b": version + "b"})
        _observe(instance, {"c": "only"})
        instance.wipe_assets([SOURCES[2]])
        found = latest_observations(instance, [*SOURCES, dg.AssetKey(["source", "never"])])
        assert set(found) == set(SOURCES[:2])
        for key in SOURCES:
            per_key = instance.fetch_observations(key, limit=1).records
            assert (found[key].storage_id if key in found else None) == (per_key[0].storage_id if per_key else None)
        assert latest_data_versions(instance, SOURCES) == {SOURCES[0]: "3", SOURCES[1]: "3b"}


def test_records_carried_to_the_next_verdict_are_the_ones_nothing_replaced():
    """AssetRecords.refreshed keeps a record only while its asset has no newer materialization
    (and was not wiped): the verdict after a run reads again exactly what the run made, and
    then agrees with a fresh read. Observed versions are kept current by record_changes."""
    with dg.instance_for_test() as instance:  # SQLite storage, as nexus-agent uses
        defs = _defs()
        graph = defs.resolve_asset_graph()
        images = [dg.AssetKey(["image", k.path[-1]]) for k in SOURCES]
        job = defs.resolve_implicit_global_asset_job_def()
        _observe(instance, {"a": "1", "b": "1", "c": "1"})
        job.execute_in_process(instance=instance, asset_selection=images)
        before = AssetRecords(instance)
        assert may_be_stale(graph, instance, images, before) == []
        record_changes(instance, [Observation(SOURCES[1], "2")], before)  # what a verdict records...
        assert latest_data_versions(instance, [SOURCES[1]], before) == {SOURCES[1]: "2"}  # ...it then reads
        job.execute_in_process(instance=instance, asset_selection=[images[1]])  # the run
        instance.wipe_assets([images[2]])
        after = before.refreshed()
        assert set(after._read) == {images[0]}, "only the record nothing replaced is carried over"
        for key in images:
            carried = {r.asset_entry.asset_key: r.asset_entry.last_materialization_storage_id for r in after.get([key])}
            fresh = {r.asset_entry.asset_key: r.asset_entry.last_materialization_storage_id
                     for r in AssetRecords(instance).get([key])}
            assert carried == fresh, key
        assert may_be_stale(graph, instance, images, after) == may_be_stale(graph, instance, images) == [images[2]]


def _checked_defs(judged: set[str]) -> dg.Definitions:
    """The images with lint/unit/integration checks; the step gives the verdicts of the images in
    judged only, as a run killed between recording an image and its tests leaves the others."""
    @dg.multi_observable_source_asset(specs=[dg.AssetSpec(k) for k in SOURCES])
    def sources():
        yield from ()

    keys = [dg.AssetKey(["image", k.path[-1]]) for k in SOURCES]

    @dg.multi_asset(specs=[dg.AssetSpec(key, deps=[src], skippable=True) for key, src in zip(keys, SOURCES, strict=True)],
                    check_specs=[dg.AssetCheckSpec(stage, asset=key) for key in keys for stage in TEST_STAGES],
                    can_subset=True)
    def images(context):
        for key in sorted(k for k in context.selected_asset_keys if k in keys):
            name = key.path[-1]
            checks = [dg.AssetCheckResult(asset_key=key, check_name=s, passed=True) for s in TEST_STAGES]
            yield dg.MaterializeResult(asset_key=key, data_version=dg.DataVersion("img-" + name),
                                       metadata={"image_id": f"sha256:{name * 12}"},
                                       check_results=checks if name in judged else [])

    return dg.Definitions(assets=[sources, images])


def test_an_image_recorded_without_its_tests_verdict_is_untested_and_stale_with_that_reason():
    instance = dg.DagsterInstance.ephemeral()
    _observe(instance, {"a": "1", "b": "1", "c": "1"})
    images = [dg.AssetKey(["image", n]) for n in ("a", "b", "c")]
    _checked_defs({"a", "b", "c"}).resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=images)
    recorded = recorded_images(instance, ["a", "b", "c"])
    assert untested_images(instance, recorded) == {}

    # b is built again, but the run records the image and not its tests (as a kill between the two does).
    _observe(instance, {"b": "2"})
    _checked_defs({"a", "c"}).resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[images[1]], raise_on_error=False)
    recorded = recorded_images(instance, ["a", "b", "c"])
    assert untested_images(instance, recorded) == {"b": "sha256:" + "b" * 12}

    # The sources observed with that mark: Dagster holds b stale, saying why; a and c stay current.
    graph = _checked_defs(set()).resolve_asset_graph()
    _observe(instance, {"b": "2" + UNTESTED_MARK + "b" * 12})
    assert stale_images(graph, instance, images) == {
        images[1]: "its tests have no verdict (a run stopped between recording the image and its tests)"}
