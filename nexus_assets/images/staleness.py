"""Which per-service images are stale: the question behind "only stale assets rebuild".

A service's image is current when its last materialization recorded the fingerprint the
service has now (tree, build args, base image ids) and that image is still in the engine.
Everything else is stale, with the reason. The CLI, the sensor and the manifest all ask
this one function, so they never disagree."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from nexus_assets.core.errors import BuildError
from nexus_assets.core.services import Service, find_services
from nexus_assets.core.settings import Settings
from nexus_assets.images.baseimages import BaseImageMap
from nexus_assets.images.build import plan_build


def image_key(service_name: str) -> dg.AssetKey:
    return dg.AssetKey(["image", service_name])


def build_services(settings: Settings, *, prefer_repo: bool = False) -> list[Service]:
    """The services to build: the repository's, plus those only in the working copy
    (scaffolded ones). Paths point into the working copy once it exists, or into the
    repository with prefer_repo (a sensor looking for changes not yet synced)."""
    by_name: dict[str, Service] = {s.name: s for s in find_services(settings.repo)}
    if (settings.workdir / "services").is_dir():
        for service in find_services(settings.workdir):
            if not (prefer_repo and service.name in by_name):
                by_name[service.name] = service
    return [by_name[name] for name in sorted(by_name)]


@dataclass(frozen=True)
class ServiceState:
    service: Service
    status: str  # current | stale | never_built | image_missing | tests_failed | unbuildable
    reason: str
    fingerprint: str | None
    last: dict | None  # metadata of the last materialization, plain values

    @property
    def needs_build(self) -> bool:
        # Unbuildable services are attempted too: they fail fast, alone, with their reason on
        # their own asset, and build once the cause is fixed.
        return self.status != "current"


def _plain(metadata: dict) -> dict:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def service_states(services: list[Service], client, instance: dg.DagsterInstance, base_map: BaseImageMap) -> list[ServiceState]:
    """The state of every service's image, compared with what Dagster last recorded."""
    import docker.errors

    latest = instance.get_latest_materialization_events([image_key(s.name) for s in services])
    states = []
    for service in services:
        event = latest.get(image_key(service.name))
        last = _plain(event.asset_materialization.metadata) if event and event.asset_materialization else None
        try:
            plan = plan_build(service, client, base_map)
        except BuildError as exc:
            states.append(ServiceState(service, "unbuildable", str(exc), None, last))
            continue
        if last is None:
            states.append(ServiceState(service, "never_built", "no image built yet", plan.fingerprint, None))
        elif last.get("source_hash") != plan.fingerprint:
            states.append(ServiceState(service, "stale", f"source changed ({last.get('source_hash')} -> {plan.fingerprint})", plan.fingerprint, last))
        elif failed_tests := sorted(stage for stage, result in (last.get("tests") or {}).items() if result == "failed"):
            # Retested on the next run: the cause may lie outside the source (a timeout, the engine).
            states.append(ServiceState(service, "tests_failed", f"{', '.join(failed_tests)} tests failed last time", plan.fingerprint, last))
        else:
            try:
                client.images.get(last.get("image_id"))
                states.append(ServiceState(service, "current", "up to date", plan.fingerprint, last))
            except docker.errors.ImageNotFound:
                states.append(ServiceState(service, "image_missing", f"image {last.get('image_id')} is gone from the engine", plan.fingerprint, last))
    return states
