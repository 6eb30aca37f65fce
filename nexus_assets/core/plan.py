"""The one run planner: what is stale, so which asset keys a run selects. `nexus-agent run`, its
status command and the repository sensor all ask `plan_run`; none decides on its own.

From Dagster's records, read once (core/lineage.AssetRecords) after observing what the images are
made from (core/lineage.observe_and_judge):
- images: every image Dagster holds stale or missing (all of them with rebuild_all);
- pushes: those images, and every current image that passed its tests whose push Dagster holds
  stale (a new version or registry, a push that failed last time);
- the rest of the pipeline (tags, e2e, manifest, release documents, SBOMs and provenance,
  evidence): selected whole whenever an image or push is due, the repository content changed
  (the workspace's data version), a step after the images is stale, or a release tag in the
  engine no longer names the image Dagster recorded. Each of those steps remakes only what is
  stale in its own records, so the graph stays the code location's (definitions.py) and a run
  chooses by selection only;
- the release (verified_release, deployment_report): with the rest, or alone when only it is due.
The sensor selects the same keys without the release (it never releases)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.hashing import workspace_version
from nexus_assets.core.keys import (
    AFTER_IMAGES,
    ATTESTATIONS,
    EVIDENCE_PACK,
    PREPARE_KEYS,
    RELEASE_KEYS,
    WORKSPACE,
    after_images,
    image_key,
    pushed_key,
)
from nexus_assets.core.lineage import (
    AssetRecords,
    Verdict,
    declared_bases,
    latest_data_versions,
    observe_and_judge,
    stale_images,
)
from nexus_assets.core.settings import Settings
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import Service, release_tags

if TYPE_CHECKING:
    from nexus_assets.core.dagster_private import BaseAssetGraph


@dataclass(frozen=True)
class Plan:
    """What a run selects, and why."""

    services: list[Service]  # every service of the repository the graph was built for
    stale: dict[str, str]  # service -> why Dagster holds its image stale or missing
    images: list[str]  # the services whose image the run builds
    pushes: list[str]  # the services whose image the run pushes
    rest_due: bool  # the steps after the images are due (above), or an image or push is
    release_due: bool  # the release is due (with the rest, or alone)
    keys: list[dg.AssetKey]  # the selection without the release: what the sensor requests
    release: list[dg.AssetKey]  # the release keys nexus-agent adds
    verdict: Verdict  # what was read, for a second question before anything is materialized
    # When settled: {engine tag: image id or None} for every tag the plan resolved, what
    # cli/unchanged.py re-reads to say "nothing changed" again without Dagster.
    engine_tags: dict[str, str | None]

    @property
    def selection(self) -> list[dg.AssetKey]:
        """What `nexus-agent run` launches."""
        return [*self.keys, *self.release]

    @property
    def settled(self) -> bool:
        """Nothing at all to do: no run is launched."""
        return not self.keys and not self.release


def selection(graph: BaseAssetGraph[Any], names: Iterable[str], images: Iterable[str], pushes: Iterable[str]) -> list[dg.AssetKey]:
    """The pipeline's keys for a run that builds images and pushes pushes: the prepare steps, those
    images and pushes, and every step after the images this graph can execute."""
    after = [k for k in after_images(sorted(names)) if graph.has(k) and graph.get(k).is_executable]
    return [*PREPARE_KEYS, *(image_key(n) for n in images),
            *(pushed_key(n) for n in pushes if graph.has(pushed_key(n))), *after]


def plan_run(graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, settings: Settings, services: list[Service],
             client: Any, *, rebuild_all: bool = False, records: AssetRecords | None = None,
             scaffolded: Collection[str] = ()) -> Plan:
    """Observe (recording what changed), read Dagster's records once, and plan the run.
    client: a Docker client (the engine's image listing); records: what an earlier plan read that
    is still current (AssetRecords.refreshed, after a run); scaffolded: the services a run's own
    scaffolding has just added (a new code version of the graph): the run that follows builds
    those only, then what follows the images and the release, which waited for them."""
    verdict = observe_and_judge(graph, instance, services, client, load_base_image_map(), records)
    names = sorted(s.name for s in services)
    stale = {key.path[-1]: reason for key, reason in verdict.stale.items()}
    if scaffolded:
        images = sorted(set(stale) & set(scaffolded))
        keys = [k for k in selection(graph, names, images, images) if k not in PREPARE_KEYS]
        return Plan(services=services, stale=stale, images=images, pushes=images, rest_due=True, release_due=True,
                    keys=keys, release=list(RELEASE_KEYS), verdict=verdict, engine_tags={})
    images = names if rebuild_all else sorted(stale)
    pushes = sorted({*images, *stale_pushes(graph, instance, [n for n in names if n not in stale], verdict.records)})
    # Cheapest first: an image or push due selects the rest anyway.
    rest_due = bool(images or pushes) or _rest_due(graph, instance, settings, verdict)
    release_due = rest_due or bool(stale_images(graph, instance, list(RELEASE_KEYS), verdict.records))
    return Plan(services=services, stale=stale, images=images, pushes=pushes, rest_due=rest_due,
                release_due=release_due, keys=selection(graph, names, images, pushes) if rest_due else [],
                release=list(RELEASE_KEYS) if release_due else [], verdict=verdict,
                engine_tags={} if release_due else _engine_tags(settings, services, verdict))


def workspace_changed(instance: dg.DagsterInstance, repo: Path, records: AssetRecords | None = None) -> bool:
    """Whether the repository's content differs from what the last workspace sync recorded."""
    return latest_data_versions(instance, [WORKSPACE], records).get(WORKSPACE) != workspace_version(repo)


def _rest_due(graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, settings: Settings, verdict: Verdict) -> bool:
    """The repository changed since the last sync, a step after the images is stale in Dagster's
    eyes, or a release tag was moved by another build (tagged_images moves it back)."""
    if workspace_changed(instance, settings.repo, verdict.records):
        return True
    # The aggregates only: a service that never built or was never pushed has no SBOM or provenance,
    # and is no reason to run again while nothing it is made from changes.
    after = [k for k in (*AFTER_IMAGES, ATTESTATIONS, EVIDENCE_PACK) if graph.has(k) and graph.get(k).is_executable]
    if stale_images(graph, instance, after, verdict.records):
        return True
    return not all(verdict.engine.tag_id(tag) == image_id
                   for name, image_id in verdict.recorded.items()
                   for tag in release_tags(settings.registry, name, settings.version))


def stale_pushes(graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, names: list[str],
                 records: AssetRecords | None = None) -> list[str]:
    """The services among names whose push Dagster holds stale or missing and whose image passed
    its tests (a service whose tests failed is not pushed, so it is not asked for)."""
    keys = [pushed_key(n) for n in names if graph.has(pushed_key(n))]
    records = records or AssetRecords(instance)
    stale = {key.path[-1] for key in stale_images(graph, instance, keys, records)}
    if not stale:
        return []
    latest = records.latest([image_key(n) for n in stale])
    tests = {key.path[-1]: last.metadata.get("tests") or {} for key, last in latest.items()}
    return sorted(n for n in stale if n in tests and "failed" not in tests[n].values())


def _engine_tags(settings: Settings, services: list[Service], verdict: Verdict) -> dict[str, str | None]:
    """{engine tag: image id or None} for every tag the verdict resolved: the release tags and each
    base image a Dockerfile names (with the substitutes)."""
    base_map = load_base_image_map()
    names = {tag for s in services for tag in release_tags(settings.registry, s.name, settings.version)}
    names |= {b.image for s in services for b in declared_bases(s)}
    names |= {base_map.base, *base_map.substitutes, *base_map.substitutes.values()}
    full = {n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest" for n in names}
    return {tag: verdict.engine.tag_id(tag) for tag in full}
