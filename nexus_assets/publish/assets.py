"""pushed/<service> and pushed_images: every image that passed its tests, in the registry.

The specs and the push run here; definitions.py hands them to the image step (core.stage.Publisher)
so they share its multi-asset: Dagster skips a whole step when an upstream output it depends on
was not yielded, so a separate push step depending on image/<service> would push nothing in a
run where one service failed to build (dagster-io/dagster#9408, #22242). Inside one multi-asset,
pushed/<service> -> image/<service> is lineage and staleness only: pushed/<service> is stale
exactly when its image changed (or the registry or version did), so only those are pushed.

pushed_images is always produced when selected, like tagged_images: what comes after (the
manifest) depends on it, never on one service's push.

An image whose lint, unit and integration tests all passed is also tagged cache-<key> in the
registry (images.cache reads it back on any machine before building)."""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed

import dagster as dg

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import NexusError
from nexus_assets.core.keys import PUSHED_IMAGES, TAGGED_IMAGES, image_key, pushed_key
from nexus_assets.core.lineage import recorded_images
from nexus_assets.core.registry import RegistryClient, credentials_from_env
from nexus_assets.core.services import release_tags
from nexus_assets.publish.push import PushResult, push_image


def push_code_version(registry: str, version: str) -> str:
    """pushed/<service>'s code version: where it goes, so a new registry or version is a change."""
    return "push-" + hashlib.sha256(f"{registry}|{version}".encode()).hexdigest()[:16]


def pushed_specs(names: list[str], registry: str, version: str) -> list[dg.AssetSpec]:
    """pushed/<service> for every service, and pushed_images after them."""
    specs = [dg.AssetSpec(
        key=pushed_key(name), deps=[image_key(name)], group_name="release", kinds={"docker"}, skippable=True,
        code_version=push_code_version(registry, version),
        description=f"The image of {name} in the registry: REGISTRY/nexus/{name.lower()}:VERSION and :latest, its "
                    "data version the registry's manifest digest. Pushed only when its tests passed.",
    ) for name in names]
    specs.append(dg.AssetSpec(
        key=PUSHED_IMAGES, deps=[*(pushed_key(n) for n in names), TAGGED_IMAGES], group_name="release",
        kinds={"docker"}, skippable=False, code_version=push_code_version(registry, version),
        description="Every service's image in the registry (repo digest per service) and why any is not there."))
    return specs


def _plain(metadata) -> dict:
    return {key: getattr(value, "value", value) for key, value in (metadata or {}).items()}


def _last_metadata(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, dict]:
    found = {}
    for record in instance.get_asset_records(keys):  # one query for all
        last = record.asset_entry.last_materialization
        if last is not None and last.asset_materialization is not None:
            found[record.asset_entry.asset_key] = _plain(last.asset_materialization.metadata)
    return found


def _why_not(name: str, image_id: str | None, tests: dict, failed: dict[str, str]) -> str | None:
    """Why a service's image is not to be pushed, or None when it is."""
    if name in failed:
        return f"its image did not build in this run: {failed[name]}"
    if not image_id:
        return "no image built yet"
    broken = sorted(stage for stage, state in (tests or {}).items() if state == "failed")
    if broken:
        return f"{', '.join(broken)} tests failed"
    return None


def _all_passed(tests: dict) -> bool:
    """Lint, unit and integration all passed (not skipped, not run elsewhere): only such an image
    goes into the shared build cache, which records its tests as passed where it is pulled."""
    return all(tests.get(stage) == "passed" for stage in ("lint", "unit", "integration"))


def publish_images(context: dg.AssetExecutionContext, docker_engine, settings, names: list[str],
                   built: dict[str, dict], failed: dict[str, str]):
    """Push the selected services' images (up to max_parallel at a time) and yield pushed/<service>
    for each one now in the registry, an observation with the reason for each one that is not,
    and pushed_images. built: this run's {service: {"image_id", "tests"}}; failed: this run's
    build failures {service: reason}."""
    selected = [n for n in names if pushed_key(n) in context.selected_asset_keys]
    results: dict[str, PushResult] = {}
    problems: dict[str, str] = {}
    if selected:
        results, problems = _push_selected(context, docker_engine, settings, selected, built, failed)
    for name in selected:
        if name in results:
            result = results[name]
            context.log.info(f"{'pushed' if result.pushed else 'already in the registry, not pushed again:'} "
                             f"{result.repo_digest}" + (f" in {result.seconds:.1f}s" if result.pushed else "")
                             + (f"; in the registry cache as {result.cache_tag}" if result.cache_tagged else ""))
            # The data version names the repository too: the same content pushed under another
            # registry or path is another artifact (its provenance's subject is that name).
            yield dg.MaterializeResult(asset_key=pushed_key(name), data_version=dg.DataVersion(result.repo_digest),
                                       metadata=result.metadata())
        else:
            yield dg.AssetObservation(asset_key=pushed_key(name), metadata={
                "status": "not_pushed", "reason": problems[name], "registry": settings.registry,
                "image_key": image_key(name).to_user_string()})
    if PUSHED_IMAGES in context.selected_asset_keys:
        yield _pushed_images(context, settings, names, results, problems)


def _push_selected(context, docker_engine, settings, selected: list[str], built: dict[str, dict],
                   failed: dict[str, str]) -> tuple[dict[str, PushResult], dict[str, str]]:
    recorded = recorded_images(context.instance, selected)
    last_images = _last_metadata(context.instance, [image_key(n) for n in selected])
    todo: dict[str, str] = {}
    cache_keys: dict[str, str] = {}  # the images to put in the shared build cache too
    problems: dict[str, str] = {}
    for name in selected:
        last = last_images.get(image_key(name), {})
        info = built.get(name) or {"image_id": recorded.get(name), "tests": last.get("tests"),
                                   "cache_key": last.get("cache_key")}
        reason = _why_not(name, info.get("image_id"), info.get("tests") or {}, failed)
        if reason:
            problems[name] = f"not pushed: {reason}"
            context.log.warning(f"{name}: not pushed to {settings.registry}: {reason}")
            continue
        todo[name] = str(info["image_id"])
        if settings.registry_cache and info.get("cache_key") and _all_passed(info.get("tests") or {}):
            cache_keys[name] = str(info["cache_key"])
    results: dict[str, PushResult] = {}
    if not todo:
        return results, problems
    try:
        credentials = credentials_from_env()
        checker = RegistryClient(settings.registry, credentials)
        try:
            checker.check(on_retry=lambda text: context.log.warning(text))
        finally:
            checker.close()
    except NexusError as exc:  # one line for the run, the same reason on every service
        context.log.error(f"push to {settings.registry} failed: {exc}")
        problems.update(dict.fromkeys(todo, f"not pushed: {exc}"))
        return results, problems
    context.log.info(f"pushing {len(todo)} image(s) to {settings.registry}, up to {settings.max_parallel} at a time")

    # An interrupt throws this switch (cancel_all reaches it too): a push in flight stops reading
    # the engine's progress at its next line, so the process exits within seconds; the engine
    # drops a push whose client went.
    stop = Cancellation()

    def one(name: str, notes: list[str]) -> PushResult:
        client, registry = docker_engine.client(), RegistryClient(settings.registry, credentials)
        try:  # retries are noted here and logged from the step's thread
            return push_image(client, registry, name, todo[name], settings.version, log=notes.append,
                              on_progress=lambda _chunk: stop.raise_if_cancelled(f"push of {name}"),
                              cache_key=cache_keys.get(name))
        finally:
            registry.close()
            client.close()

    pool = ThreadPoolExecutor(max_workers=settings.max_parallel, thread_name_prefix="push")
    notes: dict[str, list[str]] = {name: [] for name in todo}
    try:
        futures = {pool.submit(one, name, notes[name]): name for name in sorted(todo)}
        for future in as_completed(futures):
            name = futures[future]
            for note in notes[name]:
                context.log.warning(f"{name}: {note}")
            try:
                results[name] = future.result()
            except NexusError as exc:
                problems[name] = f"not pushed: {exc}"
                context.log.error(f"{name}: push to {settings.registry} failed: {exc}")
    except BaseException:  # interrupted: pushes not started are dropped, those in flight stop reading
        stop.cancel("interrupted")
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results, problems


def _pushed_images(context, settings, names: list[str], results: dict[str, PushResult],
                   problems: dict[str, str]) -> dg.MaterializeResult:
    """Every service's current push: this run's, else the one recorded for its current image
    under the current release tag."""
    recorded = recorded_images(context.instance, names)
    last = _last_metadata(context.instance, [pushed_key(n) for n in names])
    rows: dict[str, dict] = {}
    missing: list[dict] = []
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
                  "registry": settings.registry, "version": settings.version,
                  "credentials": "from environment" if any(os.environ.get(k) for k in (
                      "REGISTRY_USERNAME", "DOCKER_REGISTRY_TOKEN")) else "none"})
