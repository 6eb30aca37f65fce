"""What an image is made from, as Dagster sees it, and Dagster's own answer to "what is stale".

Each service's sources (`source/<service>`) and each base image (`base_image/<name>`) are
observable assets: their data version is the content hash of the service folder and the image
id in the engine. An image's code version is its recipe (build args, recipe version), known
without any I/O. Dagster records the versions an image was built from; an image is stale when
one of them changed, and missing when it was never built or is gone from the engine. The CLI,
the sensor, the UI and the manifest all read that one answer through `stale_images`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.dagster_private import events_by_id, newest_event_ids, sql_storage, stale_statuses
from nexus_assets.core.engine_images import EngineImages
from nexus_assets.core.errors import BuildError
from nexus_assets.core.keys import TEST_STAGES, base_image_key, image_key, source_key
from nexus_assets.target.baseimages import BaseImageMap, FromLine, external_bases, stood_in
from nexus_assets.target.services import Service

if TYPE_CHECKING:  # for annotations only
    from docker import DockerClient  # untyped package: Any to mypy, a name to the reader

    from nexus_assets.core.dagster_private import BaseAssetGraph

# Bump when what a build does changes (labels, tags, build flags): every image becomes stale.
RECIPE_VERSION = "3"  # 3: OCI source/revision/created from git, not the path and the clock
ABSENT = "absent"  # data version of a base image the engine does not have


@dataclass(frozen=True)
class Observation:
    key: dg.AssetKey
    data_version: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def event(self) -> dg.AssetObservation:
        return dg.AssetObservation(asset_key=self.key, metadata=self.metadata,
                                   tags={"dagster/data_version": self.data_version})


def recipe_version(build_args: Mapping[str, str]) -> str:
    """An image's code version: how it is built, not what from."""
    payload = json.dumps({"recipe": RECIPE_VERSION, "args": dict(sorted(build_args.items()))}, sort_keys=True)
    return "recipe-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def declared_bases(service: Service) -> list[FromLine]:
    """The images a service's Dockerfile starts FROM, read from the file (no engine)."""
    if service.dockerfile is None:
        return []
    try:
        return external_bases(service.dockerfile, service.build_args)
    except BuildError:
        return []  # reported by the build, which fails alone naming the line


GONE_MARK = "+image-gone-"
UNTESTED_MARK = "+untested-"


def observe_sources(services: Iterable[Service], gone: Mapping[str, str] | None = None,
                    untested: Mapping[str, str] | None = None) -> list[Observation]:
    """source/<service>: the hash of what its build reads (the context through its .dockerignore,
    and the Dockerfile, also when outside the context). A service whose last
    image is gone from the engine (gone: name -> image id), or was recorded without a verdict of
    its tests (untested: name -> image id), is observed with a version that says so: Dagster then
    holds its image stale, so the UI, the sensor and the CLI all rebuild and test it. The build
    records the plain version again (source_event), so that happens once."""
    gone, untested = gone or {}, untested or {}
    found = []
    for s in services:
        version, metadata = s.sources_hash()[:24], {"path": str(s.path)}
        if s.name in gone:
            version += GONE_MARK + gone[s.name].removeprefix("sha256:")[:12]
            metadata["image_gone"] = gone[s.name]
        elif s.name in untested:
            version += UNTESTED_MARK + untested[s.name].removeprefix("sha256:")[:12]
            metadata["image_untested"] = untested[s.name]
        found.append(Observation(source_key(s.name), version, metadata))
    return found


def source_event(name: str, tree: str, commit: Mapping[str, str] | None = None) -> dg.AssetObservation:
    """The observation an image build records of the context it really built: its tree hash, and
    (commit) the target's `source_commit` and `source_commit_time` it was built at."""
    return Observation(source_key(name), tree[:24], {"observed_by": "build", "tree_hash": tree, **(commit or {})}).event()


def observe_base_images(names: Iterable[str], engine: EngineImages, base_map: BaseImageMap) -> list[Observation]:
    """base_image/<name>: the id of that image in the engine (a substitute says so)."""
    found = []
    for name in sorted(set(names)):
        image_id = engine.tag_id(name)
        if image_id is None:
            found.append(Observation(base_image_key(name), ABSENT, {"image": name, "present": False}))
            continue
        row = engine.by_tag[name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"]
        substitute = (row.get("Labels") or {}).get("io.nexus-assets.substitutes") == name
        found.append(Observation(base_image_key(name), image_id,
                                 {"image": name, "present": True, "substituted": substitute,
                                  "stood_in": stood_in(name, row.get("Labels")), "map": str(base_map.path) if substitute else ""}))
    return found


def plain(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dagster metadata values as plain Python values (a MetadataValue's .value)."""
    return {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}


@dataclass(frozen=True)
class Latest:
    """The newest materialization of one asset: plain metadata, the run that made it, when, its
    storage id (what a newer observation is compared with) and its tags (data version, provenance)."""

    metadata: dict[str, Any]
    run_id: str
    timestamp: float
    storage_id: int
    tags: dict[str, str] = field(default_factory=dict)


class AssetRecords:
    """Dagster's asset records (the newest materialization of each key) and the data versions of
    the newest observations, each read once: one verdict reads the images' records for the
    gone-image check, the staleness pre-filter and the tag check, and the sources' observed
    versions to record what changed and again for the pre-filter. Valid while nothing is
    materialized, i.e. within one verdict; record_changes keeps the observed versions current."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._read: dict[dg.AssetKey, dg.AssetRecord | None] = {}
        self.observed: dict[dg.AssetKey, str | None] = {}  # key -> its newest observation's data version

    def get(self, keys: Iterable[dg.AssetKey]) -> list[dg.AssetRecord]:
        keys = list(dict.fromkeys(keys))
        missing = [k for k in keys if k not in self._read]
        if missing:
            found = {r.asset_entry.asset_key: r for r in self.instance.get_asset_records(missing)}  # one query
            self._read.update({k: found.get(k) for k in missing})
        return [record for k in keys if (record := self._read[k]) is not None]

    def latest(self, keys: Iterable[dg.AssetKey]) -> dict[dg.AssetKey, Latest]:
        """The newest materialization of each key that has one: the one way every stage reads
        "the latest materialization's metadata" (one query for all keys not read yet)."""
        found = {}
        for record in self.get(keys):
            entry = record.asset_entry.last_materialization_record
            materialization = entry.event_log_entry.asset_materialization if entry else None
            if entry is not None and materialization is not None:
                event = entry.event_log_entry
                found[record.asset_entry.asset_key] = Latest(plain(materialization.metadata), event.run_id,
                                                             event.timestamp, entry.storage_id,
                                                             dict(materialization.tags or {}))
        return found

    def refreshed(self) -> AssetRecords:
        """For a new verdict after a run: the records read here whose key has had no newer
        materialization since (one grouped query for their newest event ids, honouring wipes),
        so that only the assets the run made are read again; observed versions are read afresh."""
        fresh = AssetRecords(self.instance)
        storage = sql_storage(self.instance)
        held = {k: r for k, r in self._read.items() if r is not None and r.asset_entry.last_materialization_record}
        if not held or storage is None:
            return fresh
        ids = newest_event_ids(storage, list(held), dg.DagsterEventType.ASSET_MATERIALIZATION)
        for key, record in held.items():
            entry = record.asset_entry.last_materialization_record
            if entry is not None and ids.get(key) == entry.storage_id:
                fresh._read[key] = record
        return fresh


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    """Plain metadata of key's newest materialization ({} when it has none)."""
    found = AssetRecords(instance).latest([key]).get(key)
    return found.metadata if found else {}


def latest_data_versions(instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey],
                         records: AssetRecords | None = None) -> dict[dg.AssetKey, str]:
    """The data version Dagster holds now for each key: its last materialization's (one query for
    all keys), or for an asset that is observed, never materialized, its last observation's."""
    keys = list(keys)
    records = records or AssetRecords(instance)
    versions: dict[dg.AssetKey, str] = {}
    for record in records.get(keys):
        last = record.asset_entry.last_materialization
        event = last.asset_materialization if last else None
        version = event.tags.get("dagster/data_version") if event and event.tags else None
        if version:
            versions[record.asset_entry.asset_key] = version
    unread = [k for k in keys if k not in versions and k not in records.observed]
    found = latest_observations(instance, unread)
    for key in unread:
        observation = found[key].event_log_entry.asset_observation if key in found else None
        records.observed[key] = observation.tags.get("dagster/data_version") if observation and observation.tags else None
    versions.update({k: v for k in keys if k not in versions and (v := records.observed.get(k))})
    return versions


def latest_observations(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, dg.EventLogRecord]:
    """The newest observation of each key, as its event record (storage id and event). Dagster reads them one query per key (its SQL asset
    records do not keep the last observation); on SQL storage, which is every storage Dagster
    ships, one grouped query finds the newest event id of every key (honouring wipes, as
    Dagster's own per-key read does) and a second reads those events: 100 services observe in
    two queries instead of 200."""
    storage = sql_storage(instance)
    if not keys:
        return {}
    if storage is None:
        found = {}
        for key in keys:
            records = instance.fetch_observations(key, limit=1).records
            if records:
                found[key] = records[0]
        return found
    records = events_by_id(storage, list(newest_event_ids(storage, keys, dg.DagsterEventType.ASSET_OBSERVATION).values()))
    return {r.event_log_entry.asset_observation.asset_key: r
            for r in records if r.event_log_entry.asset_observation is not None}


def record_changes(instance: dg.DagsterInstance, observations: list[Observation],
                   records: AssetRecords | None = None) -> list[Observation]:
    """Store the observations whose data version differs from what Dagster holds, so a tick
    that finds nothing new writes nothing. Returns those stored."""
    records = records or AssetRecords(instance)
    held = latest_data_versions(instance, [o.key for o in observations], records)
    changed = [o for o in observations if held.get(o.key) != o.data_version]
    for observation in changed:
        instance.report_runless_asset_event(observation.event())
        records.observed[observation.key] = observation.data_version
    return changed


def recorded_images(instance: dg.DagsterInstance, names: Iterable[str],
                    records: AssetRecords | None = None) -> dict[str, str | None]:
    """The image id each service's newest materialization recorded (one query for all), or None."""
    by_key = {image_key(name): name for name in names}
    found: dict[str, str | None] = dict.fromkeys(by_key.values())
    for record in (records or AssetRecords(instance)).get(by_key):
        last = record.asset_entry.last_materialization
        materialization = last.asset_materialization if last else None
        if materialization is not None:
            image_id = materialization.metadata.get("image_id")
            found[by_key[record.asset_entry.asset_key]] = str(getattr(image_id, "value", image_id))
    return found


def gone_images(recorded: Mapping[str, str | None], engine: EngineImages) -> dict[str, str]:
    """{service: image id} for each service whose last built image (recorded: recorded_images)
    is no longer in the engine."""
    return {name: image_id for name, image_id in recorded.items() if image_id and not engine.has(image_id)}


def untested_images(instance: dg.DagsterInstance, recorded: Mapping[str, str | None],
                    records: AssetRecords | None = None) -> dict[str, str]:
    """{service: image id} for each service whose newest image was recorded without a verdict of
    one of its test checks (lint, unit, integration) on that very materialization: a run stopped
    (killed, the machine lost) between recording the image and recording its tests. Its image
    would otherwise be current with its tests for ever planned, and the release gate closed."""
    newest = {}
    for record in (records or AssetRecords(instance)).get([image_key(n) for n, i in recorded.items() if i]):
        last = record.asset_entry.last_materialization_record
        if last is not None:
            newest[record.asset_entry.asset_key.path[-1]] = last.storage_id
    checks = [dg.AssetCheckKey(image_key(n), stage) for n in newest for stage in TEST_STAGES]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks) if checks else {}
    found = {}
    for check in checks:
        execution = latest.get(check)
        planned_only = execution is None or execution.status.value == "PLANNED"  # PLANNED | SUCCEEDED | FAILED
        evaluation = None if planned_only or execution is None else execution.evaluation
        target = getattr(evaluation, "target_materialization_data", None)
        name = check.asset_key.path[-1]
        if evaluation is None or (target is not None and target.storage_id != newest[name]):
            found[name] = str(recorded[name])
    return found


def may_be_stale(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance,
                 keys: Iterable[dg.AssetKey], records: AssetRecords | None = None) -> list[dg.AssetKey]:
    """The keys Dagster could hold stale or missing, read from its own records in a few batch
    reads: no materialization yet, another code version, or an input whose data version differs
    from the one recorded when it was made (or an input added or removed). Those are the only
    causes Dagster's resolver finds for an unpartitioned asset, so the others are fresh and only
    these need the resolver, which reads the event log once per input of each key."""
    keys = list(keys)
    parents = {key: set(asset_graph.get(key).parent_keys) for key in keys}
    records = records or AssetRecords(instance)
    held = latest_data_versions(instance, {p for ps in parents.values() for p in ps}, records)
    by_key = {r.asset_entry.asset_key: r for r in records.get(keys)}
    candidates = []
    for key in keys:
        record = by_key.get(key)
        last = record.asset_entry.last_materialization if record else None
        materialization = last.asset_materialization if last else None
        provenance = dg.DataProvenance.from_tags(materialization.tags or {}) if materialization else None
        if provenance is None or provenance.code_version != asset_graph.get(key).code_version:
            candidates.append(key)
            continue
        recorded = {k: v.value for k, v in provenance.input_data_versions.items()}
        current = {k: held.get(k) for k in parents[key]}
        if recorded.keys() != current.keys() or any(current[k] != v for k, v in recorded.items()):
            candidates.append(key)
    return candidates


def stale_images(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance,
                 keys: Iterable[dg.AssetKey], records: AssetRecords | None = None) -> dict[dg.AssetKey, str]:
    """Dagster's own verdict on each image: {key: reason} for the stale and missing ones.

    This is the resolver behind the UI's "Stale" badge and RunRequest(stale_assets_only=True);
    Dagster has no public function for it yet: core/dagster_private.py holds the private call."""
    keys = may_be_stale(asset_graph, instance, keys, records)  # the resolver only where Dagster could say stale
    if not keys:
        return {}
    found: dict[dg.AssetKey, str] = {}
    for key, (status, causes) in stale_statuses(asset_graph, instance, keys).items():
        if status == "missing":
            found[key] = "never built"
        else:
            found[key] = "; ".join(sorted({_cause_text(*cause) for cause in causes})) or "stale"
    return found


def _cause_text(upstream: dg.AssetKey, version: str, reason: str) -> str:
    """A root cause in words: "source/users has a new data version", "image/users has a new code version"."""
    if GONE_MARK in version:
        return "its image is gone from the engine"
    if UNTESTED_MARK in version:
        return "its tests have no verdict (a run stopped between recording the image and its tests)"
    return f"{upstream.to_user_string()} {reason}"


@dataclass(frozen=True)
class Verdict:
    """Dagster's answer after observing, and what was read to reach it (the CLI's tag check
    reads the same engine listing and records instead of asking again)."""

    stale: dict[dg.AssetKey, str]  # image key -> reason, for each stale or missing image
    engine: EngineImages
    recorded: dict[str, str | None]  # service -> the image id its newest materialization recorded
    records: AssetRecords  # what was read, for further questions before anything is materialized


def observe_and_judge(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, services: list[Service],
                      client: DockerClient, base_map: BaseImageMap, records: AssetRecords | None = None) -> Verdict:
    """Observe every service's sources, the base images and the images' presence in the engine,
    record what changed, and return Dagster's verdict: {image key: reason} for each stale or
    missing image that the loaded definitions know. The CLI and the sensor both start here.
    records: what an earlier verdict read, still current (AssetRecords.refreshed)."""
    engine = EngineImages.read(client)
    records = records or AssetRecords(instance)
    recorded = recorded_images(instance, [s.name for s in services], records)
    gone = gone_images(recorded, engine)
    untested = untested_images(instance, {n: i for n, i in recorded.items() if n not in gone}, records)
    observations = observe_sources(services, gone, untested)
    observations += observe_base_images({b.image for s in services for b in declared_bases(s)}, engine, base_map)
    known = [o for o in observations if asset_graph.has(o.key)]
    record_changes(instance, known, records)
    images = [image_key(s.name) for s in services if asset_graph.has(image_key(s.name))]
    verdict = stale_images(asset_graph, instance, images, records)
    # A build records the versions of its inputs as Dagster holds them when its step starts. Put
    # back the plain version of a source observed "image gone" now that the verdict is taken, so
    # the rebuild records what it really builds from (the run is planned from this verdict).
    if gone or untested:
        record_changes(instance, observe_sources([s for s in services if (s.name in gone or s.name in untested)
                                                  and asset_graph.has(source_key(s.name))]), records)
    return Verdict(verdict, engine, recorded, records)
