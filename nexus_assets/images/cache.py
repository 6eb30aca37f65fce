"""The registry as a shared build cache (what Bazel and Turborepo call a remote cache).

An image that passed all its tests (lint, unit, integration) is pushed, besides its release
tags, as REGISTRY/nexus/<service>:cache-<key>, where the key is everything that decides the
image: the source fingerprint (the build context and Dockerfile, the build args and the base
image ids), the base image ids again by name, and the recipe version (how nexus-assets builds).
Before building a stale image, the image step asks the registry for that tag. On a hit it reads
the image's config from the registry (a small blob), takes it only when its labels carry the
same fingerprint and service, pulls it by digest, gives it the release tags as a build would,
and records its unit and integration checks as "passed when built" naming the cache tag and the
commit it was built from (its OCI labels): no build, no test container. Its lint check is
recorded so too, from the lint result the image carries in its label io.nexus-assets.lint
(written at build time, verify.lint_record): no lint runs, unless the image has no such label
(built by an earlier nexus-assets) or what lint reads differs here (another hadolint or node,
a file the .dockerignore keeps out of the key). The key itself is unchanged by that label: it
covers what decides the image, and lint's own inputs are checked against the label instead. A fresh machine with an
empty Dagster instance - every CI runner - so rebuilds only what changed since any machine last
built it.

The cache is an optimisation, never a reason to fail: a registry that is down, refuses us, or
holds a hit that does not match, leaves the build to happen as it would without it (one warning).
NEXUS_REGISTRY_CACHE=0 turns it off."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import EngineError, NexusError, RegistryError
from nexus_assets.core.lineage import recipe_version
from nexus_assets.core.settings import Settings
from nexus_assets.images.build import BuildPlan
from nexus_assets.images.stream_deadline import stream_deadline
from nexus_assets.registry.client import (
    Credentials,
    CredentialSource,
    RegistryClient,
    cache_tag,
    classify,
)
from nexus_assets.target.services import Service
from nexus_assets.testing.stage import Stage, StageResult

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient


KEY_FORMAT = "1"  # bumped when what the key covers changes
SOURCE_HASH_LABEL = "io.nexus-assets.source-hash"
SERVICE_LABEL = "io.nexus-assets.service"
LOOKUP_TIMEOUT = 10.0  # seconds per registry call of a lookup: a slow registry must not hold builds up
IMAGE_MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")


def cache_key(plan: BuildPlan) -> str:
    """The cache key of a planned image: the source fingerprint (context, Dockerfile, build args,
    base image ids), the base image ids by name, the recipe version, and how compose runs it as
    written (its tests passed with those settings; folder services have none)."""
    payload = {"format": KEY_FORMAT, "fingerprint": plan.fingerprint,
               "bases": sorted([str(b.get("requested")), str(b.get("image_id"))] for b in plan.bases),
               "recipe": recipe_version(plan.build_args)}
    runtime = getattr(plan.service, "runtime", None)
    if runtime is not None:
        payload["run"] = runtime.fingerprint()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


class CacheRefused(NexusError):
    """The registry holds an image under the cache tag that is not this plan's: ignored, built."""


@dataclass(frozen=True)
class CacheHit:
    """An image the cache holds for a plan, checked against it."""

    ref: str  # REGISTRY/nexus/<service>:cache-<key>
    repo: str  # REGISTRY/nexus/<service>
    digest: str  # the manifest digest
    image_id: str  # the config digest: the image's id once pulled
    labels: dict[str, str] = field(default_factory=dict)

    def built_by(self) -> str:
        """Where the cached image was built from, as its OCI labels say."""
        revision = self.labels.get("org.opencontainers.image.revision")
        created = self.labels.get("org.opencontainers.image.created")
        source = self.labels.get("org.opencontainers.image.source")
        if not revision:
            return "built by an earlier run; no commit recorded"
        return f"built from commit {revision[:12]}" + (f" of {source}" if source else "") + \
            (f", committed {created}" if created else "")

    def origin(self) -> str:
        """The cache tag, the digest and where it was built from, in words."""
        return f"{self.ref} ({self.repo}@{self.digest}), {self.built_by()}"

    def record(self, seconds: float, pulled: bool) -> dict[str, Any]:
        """What the image's metadata keeps of the hit."""
        return {"tag": self.ref, "digest": self.digest, "repo_digest": f"{self.repo}@{self.digest}",
                "revision": self.labels.get("org.opencontainers.image.revision"),
                "created": self.labels.get("org.opencontainers.image.created"),
                "pulled_layers": pulled, "seconds": round(seconds, 2)}


class RegistryCache:
    """The cache of one image step: opened once (one check of the registry), then asked per
    service from the build threads (a client of its own per call: a requests session is not
    shared across threads safely)."""

    def __init__(self, registry: str, credentials: Credentials | None) -> None:
        self.registry, self.credentials = registry, credentials

    @classmethod
    def open(cls, settings: Settings, registry: CredentialSource, warn: Callable[[str], None]) -> RegistryCache | None:
        """The cache, or None (and one warning) when it is off or the registry cannot be used."""
        if not settings.registry_cache:
            return None
        try:
            credentials = registry.credentials()
            with RegistryClient(settings.registry, credentials, timeout=LOOKUP_TIMEOUT) as client:
                client.check(attempts=1)
        except NexusError as exc:
            warn(f"registry cache not used in this run, every stale image is built here: {exc}")
            return None
        return cls(settings.registry, credentials)

    def lookup(self, service: Service, plan: BuildPlan) -> CacheHit | None:
        """The cache's image for this plan, or None when it has none (one manifest GET). A hit is
        checked before anything is pulled: its config (a small blob) must carry this plan's
        fingerprint and service in its labels, else CacheRefused. RegistryError when the registry
        fails meanwhile."""
        key = cache_key(plan)
        with RegistryClient(self.registry, self.credentials, timeout=LOOKUP_TIMEOUT) as client:
            repository = client.repository(service.name)
            manifest = client.manifest(repository, cache_tag(key), attempts=1)
            if manifest is None:
                return None
            ref = f"{self.registry}/{service.image_repo}:{cache_tag(key)}"
            if manifest.media_type not in IMAGE_MANIFESTS:
                raise CacheRefused(f"{ref} is a {manifest.media_type or 'manifest of no type'}, not one image")
            config_digest = str(json.loads(manifest.body).get("config", {}).get("digest") or "")
            if not config_digest.startswith("sha256:"):
                raise CacheRefused(f"{ref}: its manifest names no image config")
            config = json.loads(client.blob(repository, config_digest, attempts=1))
        labels = {str(k): str(v) for k, v in ((config.get("config") or {}).get("Labels") or {}).items()}
        check_labels(ref, labels, plan, service)
        return CacheHit(ref=ref, repo=f"{self.registry}/{service.image_repo}", digest=manifest.digest,
                        image_id=config_digest, labels=labels)

    def pull(self, client: DockerClient, hit: CacheHit, cancel: Cancellation, timeout: float | None = None) -> bool:
        """Have hit's image in the engine: pulled by digest, unless the engine has it already.
        True when it was pulled. The pulled image must be the one checked (its id is the config
        digest read from the registry). A pull still running after timeout seconds (a registry
        that stalls mid-layer) is stopped and is a RegistryError, so the service is built
        instead; a cancel stops it at once, even while no byte arrives."""
        import docker.errors
        import requests

        try:
            client.images.get(hit.image_id)
            return False
        except docker.errors.ImageNotFound:
            pass
        secret = self.credentials.password if self.credentials else None
        with stream_deadline(client.api, timeout, cancel) as stopper:
            try:
                for chunk in client.api.pull(hit.repo, tag=hit.digest, stream=True, decode=True,
                                             auth_config=self.credentials.auth_config() if self.credentials else None):
                    if chunk.get("error"):
                        raise classify(self.registry, str(chunk["error"]), secret)
                if stopper.reason is None:
                    image = client.images.get(hit.image_id)
            except Exception as exc:
                if stopper.reason is not None:  # whatever the shut stream raised: said below
                    pass
                elif isinstance(exc, docker.errors.ImageNotFound):
                    raise RegistryError(f"registry {self.registry}: pulling {hit.repo}@{hit.digest} did not give "
                                        f"image {hit.image_id}") from None
                elif isinstance(exc, docker.errors.APIError):
                    raise classify(self.registry, str(exc.explanation or exc), secret) from None
                elif isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException, OSError)):
                    raise EngineError(f"lost the Docker engine while pulling {hit.ref}: {type(exc).__name__}") from None
                else:
                    raise
        if stopper.reason is not None:  # the stream ended because it was shut: the engine drops the pull
            cancel.raise_if_cancelled(f"pull of {hit.ref}")
            raise RegistryError(f"registry {self.registry}: the pull of {hit.ref} {stopper.reason}")
        if image.labels.get(SOURCE_HASH_LABEL) != hit.labels.get(SOURCE_HASH_LABEL):
            raise CacheRefused(f"{hit.ref}: the pulled image's labels differ from its config in the registry")
        return True


def check_labels(ref: str, labels: dict[str, str], plan: BuildPlan, service: Service) -> None:
    """A cached image is this plan's only when its labels say so: same fingerprint, same service."""
    found = labels.get(SOURCE_HASH_LABEL)
    if found != plan.fingerprint:
        raise CacheRefused(f"{ref} carries source hash {found or '(none)'}, not this build's {plan.fingerprint}")
    if labels.get(SERVICE_LABEL) != service.name:
        raise CacheRefused(f"{ref} is labelled as service {labels.get(SERVICE_LABEL) or '(none)'}, not {service.name}")


def take_from_cache(client: DockerClient, plan: BuildPlan, hit: CacheHit, cache: RegistryCache, *, registry: str,
                    version: str,
                    reports: Path, timeout: float, cancel: Cancellation,
                    pull_timeout: float | None = None) -> tuple[dict[str, Any], list[StageResult]]:
    """Pull hit's image (within pull_timeout seconds), give it the release tags as build_image
    would, and write what stands for its build log and its unit and integration results:
    (built, [unit, integration])."""
    service = plan.service
    started = time.monotonic()
    import docker.errors

    pulled = cache.pull(client, hit, cancel, pull_timeout)
    tags = plan.tags(registry, version)
    try:
        image = client.images.get(hit.image_id)
        for tag in tags:
            repo, _, name = tag.rpartition(":")
            image.tag(repo, name)
    except docker.errors.DockerException as exc:  # gone again, or the engine going away
        raise EngineError(f"service {service.name}: could not tag the image pulled from {hit.ref}: {exc}") from None
    seconds = time.monotonic() - started
    log_path = reports / f"build_{service.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(
        f"# not built: {'pulled' if pulled else 'found in the engine'} from the registry cache "
        f"{hit.ref} ({hit.repo}@{hit.digest}) in {seconds:.1f}s\n"
        f"# image {hit.image_id}, {hit.built_by()}\n"
        f"# its labels carry this build's source hash {plan.fingerprint} and service {service.name}\n"
        f"# tagged {', '.join(tags)}\n", encoding="utf-8")
    reason = f"passed when built: from the registry cache {hit.ref} ({hit.built_by()})"
    stages = []
    for stage_name in ("unit", "integration"):
        stage = Stage(service.name, stage_name, reports, timeout)
        stage.write(f"# not run again: the image comes from the registry cache {hit.ref} ({hit.repo}@{hit.digest}), "
                    "which holds only images whose lint, unit and integration tests all passed")
        stage.details["from_cache"] = hit.ref
        stages.append(stage.result(True, reason))
    built = {"service": service.name, "tags": tags, "image_id": image.id, "size_bytes": image.attrs.get("Size"),
             "seconds": 0.0, "labels": hit.labels, "build_log": str(log_path),
             "cache": hit.record(seconds, pulled)}
    return built, stages
