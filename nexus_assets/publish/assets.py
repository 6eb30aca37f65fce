"""pushed/<service> and pushed_images: every image that passed its tests, in the registry.

The specs and the push run here; definitions.py hands them to the image step (testing.stage.Publisher)
so they share its multi-asset: Dagster skips a whole step when an upstream output it depends on
was not yielded, so a separate push step depending on image/<service> would push nothing in a
run where one service failed to build (dagster-io/dagster#9408, #22242). Inside one multi-asset,
pushed/<service> -> image/<service> is lineage and staleness only: pushed/<service> is stale
exactly when its image changed (or the registry or version did), so only those are pushed.
The step hands each image over as soon as it passed its tests (Publishing.submit), so pushes
overlap the other services' builds (publish.pushes).

pushed_images is always produced when selected, like tagged_images: what comes after (the
manifest) depends on it, never on one service's push.

An image whose lint, unit and integration tests all passed is also tagged cache-<key> in the
registry (images.cache reads it back on any machine before building)."""

import hashlib
import json
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import dagster as dg

from nexus_assets.core.keys import PUSHED_IMAGES, TAGGED_IMAGES, image_key, pushed_key
from nexus_assets.core.lineage import AssetRecords, recorded_images
from nexus_assets.core.settings import Settings
from nexus_assets.publish.push import PushResult
from nexus_assets.publish.pushes import Pushes
from nexus_assets.resources import DockerEngine
from nexus_assets.target.services import release_tags


def push_code_version(registry: str, version: str) -> str:
    """pushed/<service>'s code version: where it goes, so a new registry or version is a change."""
    return "push-" + hashlib.sha256(f"{registry}|{version}".encode()).hexdigest()[:16]


def pushed_specs(names: list[str], registry: str, version: str) -> list[dg.AssetSpec]:
    """pushed/<service> for every service, and pushed_images after them."""
    specs = [dg.AssetSpec(
        key=pushed_key(name), deps=[image_key(name)], group_name="publish", kinds={"docker", "registry"}, skippable=True,
        code_version=push_code_version(registry, version),
        description=f"Push of {name}: its image in the registry, REGISTRY/nexus/{name.lower()}:VERSION and :latest, its "
                    "data version the registry's manifest digest. Pushed only when its tests passed.",
    ) for name in names]
    specs.append(dg.AssetSpec(
        key=PUSHED_IMAGES, deps=[*(pushed_key(n) for n in names), TAGGED_IMAGES], group_name="publish",
        kinds={"docker", "registry"}, skippable=False, code_version=push_code_version(registry, version),
        description="Every service's image in the registry (repo digest per service) and why any is not there."))
    return specs


def _last_metadata(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, dict[str, Any]]:
    return {key: last.metadata for key, last in AssetRecords(instance).latest(keys).items()}  # one query for all


def _why_not(name: str, image_id: str | None, tests: dict[str, Any], failed: dict[str, str],
             pmmg_policy: dict[str, Any] | None = None) -> str | None:
    """Why a service's image is not to be pushed, or None when it is."""
    if name in failed:
        return f"its image did not build in this run: {failed[name]}"
    if not image_id:
        return "no image built yet"
    if pmmg_policy and not pmmg_policy.get("passed"):  # policy.pmmg_images: never in the registry
        return f"PMMG is browser-only and this image containerizes its execution logic: {pmmg_policy.get('detail')}"
    broken = sorted(stage for stage, state in (tests or {}).items() if state == "failed")
    if broken:
        return f"{', '.join(broken)} tests failed"
    return None


def _all_passed(tests: dict[str, Any]) -> bool:
    """Lint, unit and integration all passed (not skipped, not run elsewhere): only such an image
    goes into the shared build cache, which records its tests as passed where it is pulled."""
    return all(tests.get(stage) == "passed" for stage in ("lint", "unit", "integration"))


class Publishing:
    """The pushes of one image step (testing.stage.Publisher.start): each selected service's image
    pushed as soon as it was built and passed its tests (submit), the pushes' events as they
    end (ready), and at the end the current images that were not rebuilt, the reasons for
    those not pushed and pushed_images (finish). Leaving the `with` block on an interrupt or an
    error stops the pushes in flight (publish.pushes)."""

    def __init__(self, context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings,
                 names: list[str]) -> None:
        self._context, self._settings, self._names = context, settings, names
        self._selected = [n for n in names if pushed_key(n) in context.selected_asset_keys]
        self._pushes = Pushes(docker_engine, context.resources.registry, settings, context.log)
        self._refused: dict[str, str] = {}  # {service: reason} never handed to a push
        self._started: set[str] = set()  # services submitted or refused
        self._reported: set[str] = set()  # services whose pushed/<service> event was yielded

    def __enter__(self) -> "Publishing":
        self._pushes.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._pushes.__exit__(kind, exc, traceback)

    def submit(self, name: str, info: dict[str, Any]) -> None:
        """name's image was built and tested in this run (info: {"image_id", "tests", "cache_key"}):
        push it now if pushed/<name> is selected and its tests passed."""
        if pushed_key(name) in self._context.selected_asset_keys:
            self._start(name, info, {})

    def ready(self) -> Iterator[dg.MaterializeResult[Any] | dg.AssetObservation]:
        """pushed/<service> for every push that ended since last asked, without waiting."""
        for name in self._pushes.ended():
            yield self._event(name)

    def finish(self, built: dict[str, dict[str, Any]], failed: dict[str, str]) -> Iterator[Any]:
        """Push the selected services not handed over (their image current but not in the
        registry under this version, or refused), wait for every push, and yield pushed/<service>
        for each one now in the registry, an observation with the reason for each one that is
        not, and pushed_images. built: this run's {service: {"image_id", "tests", "cache_key"}};
        failed: this run's build failures {service: reason}."""
        rest = [n for n in self._selected if n not in self._started]
        recorded = recorded_images(self._context.instance, rest)
        last_images = _last_metadata(self._context.instance, [image_key(n) for n in rest])
        for name in rest:
            last = last_images.get(image_key(name), {})
            info = built.get(name) or {"image_id": recorded.get(name), "tests": last.get("tests"),
                                       "cache_key": last.get("cache_key"), "pmmg_policy": last.get("pmmg_policy")}
            self._start(name, info, failed)
        for name in self._pushes.wait():
            yield self._event(name)
        for name in self._selected:
            if name not in self._reported:
                yield self._event(name)
        if PUSHED_IMAGES in self._context.selected_asset_keys:
            yield _pushed_images(self._context, self._settings, self._names, self._pushes.results,
                                 {**self._refused, **self._pushes.problems})

    def _start(self, name: str, info: dict[str, Any], failed: dict[str, str]) -> None:
        self._started.add(name)
        tests = info.get("tests") or {}
        reason = _why_not(name, info.get("image_id"), tests, failed, info.get("pmmg_policy"))
        if reason:
            self._refused[name] = f"not pushed: {reason}"
            self._context.log.warning(f"{name}: not pushed to {self._settings.registry}: {reason}")
            return
        cache_key = info.get("cache_key") if self._settings.registry_cache and _all_passed(tests) else None
        self._pushes.submit(name, str(info["image_id"]), str(cache_key) if cache_key else None)

    def _event(self, name: str) -> dg.MaterializeResult[Any] | dg.AssetObservation:
        self._reported.add(name)
        result = self._pushes.results.get(name)
        if result is None:
            return dg.AssetObservation(asset_key=pushed_key(name), metadata={
                "status": "not_pushed", "reason": self._refused.get(name) or self._pushes.problems[name],
                "registry": self._settings.registry, "image_key": image_key(name).to_user_string()})
        how = ("already in the registry, not pushed again:" if not result.pushed else "pushed" if result.attempts
               else f"tagged {', '.join(t.rpartition(':')[2] for t in result.retagged)} by a manifest PUT (no blob moved):")
        self._context.log.info(f"{how} {result.repo_digest}" + (f" in {result.seconds:.1f}s" if result.pushed else "")
                               + (f"; in the registry cache as {result.cache_tag}" if result.cache_tagged else ""))
        # The data version names the repository too: the same content pushed under another
        # registry or path is another artifact (its provenance's subject is that name).
        return dg.MaterializeResult(asset_key=pushed_key(name), data_version=dg.DataVersion(result.repo_digest),
                                    metadata=result.metadata())


def start_publishing(context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings,
                     names: list[str]) -> Publishing:
    """testing.stage.Publisher.start: the pushes of this step, ready to take images as they pass."""
    return Publishing(context, docker_engine, settings, names)


def _pushed_images(context: dg.AssetExecutionContext, settings: Settings, names: list[str],
                   results: dict[str, PushResult],
                   problems: dict[str, str]) -> dg.MaterializeResult[Any]:
    """Every service's current push: this run's, else the one recorded for its current image
    under the current release tag."""
    recorded = recorded_images(context.instance, names)
    last = _last_metadata(context.instance, [pushed_key(n) for n in names])
    rows: dict[str, dict[str, Any]] = {}
    missing: list[dict[str, Any]] = []
    for name in sorted(names):
        if name in results:
            row = results[name].metadata()
        else:
            row = last.get(pushed_key(name)) or {}
            current_tag = release_tags(settings.registry, name, settings.version)[0]
            if not (row.get("tag") == current_tag and row.get("image_id") == recorded.get(name)):
                row = {}
        if row.get("repo_digest"):
            rows[name] = {k: row.get(k) for k in ("repo_digest", "digest", "image_id", "tag", "pushed")}
        else:
            missing.append({"service": name, "reason": problems.get(name) or "not pushed: no current push for "
                            "this image, registry and version"})
    version = hashlib.sha256(json.dumps([rows, missing], sort_keys=True).encode()).hexdigest()[:24]
    return dg.MaterializeResult(
        asset_key=PUSHED_IMAGES, data_version=dg.DataVersion(version),
        metadata={"images": dg.MetadataValue.json(rows), "problems": dg.MetadataValue.json(missing),
                  "in_registry": len(rows), "pushed_now": sum(1 for r in results.values() if r.pushed),
                  "retagged_now": sum(1 for r in results.values() if r.pushed and not r.attempts),
                  "registry": settings.registry, "version": settings.version,
                  "credentials": context.resources.registry.credentials_origin()})
