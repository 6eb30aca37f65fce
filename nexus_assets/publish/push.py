"""Step H's push, one service: put its image under REGISTRY/nexus/<service>:VERSION and :latest
in the registry, unless the registry already holds that very image under that tag, and say
which manifest digest it has there. An image that passed all its tests is also tagged
cache-<key> there (the shared build cache, images.cache): one manifest PUT, the layers are in.

The Docker engine pushes (it has the layers, and skips those the registry has); the registry's
own HEAD answer decides whether a push is needed and confirms the digest afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nexus_assets.core.errors import EngineError, RegistryError
from nexus_assets.registry.client import Credentials, RegistryClient, cache_tag, classify, with_retries
from nexus_assets.registry.released import unreleased_tag
from nexus_assets.target.services import release_tags

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient
    from docker.models.images import Image
from dataclasses import field

from nexus_assets.registry.client import Manifest


@dataclass(frozen=True)
class PushResult:
    """Where one service's image is in the registry."""

    service: str
    image_id: str  # the image's id in the local engine
    digest: str  # the registry's manifest digest, sha256:...
    repo_digest: str  # REGISTRY/nexus/<service>@sha256:...
    tag: str  # the release tag this push is for: REGISTRY/nexus/<service>:VERSION
    tags: list[str]  # every tag pushed or found in place (VERSION and latest, or build-<id> alone)
    registry: str
    pushed: bool  # False when the registry already held this image under every tag
    seconds: float
    attempts: int  # engine pushes started, retries included
    cache_tag: str = ""  # REGISTRY/nexus/<service>:cache-<key> when the image is in the shared build cache
    cache_tagged: bool = False  # True when this push wrote that tag (False: it was there, or not asked for)
    version_tagged: bool = True  # False: the version is released, its tags were left alone (registry.released)
    retagged: list[str] = field(default_factory=list)  # tags written by one manifest PUT each (no engine push)

    def metadata(self) -> dict[str, Any]:
        return asdict(self)


def local_repo_digest(image: Image, repo: str) -> str | None:
    """The manifest digest the engine recorded when it last pushed (or pulled) image to repo."""
    for entry in image.attrs.get("RepoDigests") or []:
        name, _, digest = str(entry).rpartition("@")
        if name == repo:
            return digest
    return None


def engine_push(client: DockerClient, ref: str, registry: str, credentials: Credentials | None,
                on_progress: Callable[[dict[str, Any]], None] | None = None) -> str:
    """One push of REPO:TAG by the engine; the manifest digest it reports, or a RegistryError
    (TransientRegistryError when worth another try)."""
    import docker.errors
    import requests

    repo, _, tag = ref.rpartition(":")
    secret = credentials.password if credentials else None
    digest = None
    try:
        for chunk in client.api.push(repo, tag=tag, auth_config=credentials.auth_config() if credentials else None,
                                     stream=True, decode=True):
            if on_progress is not None:
                on_progress(chunk)
            if chunk.get("error"):
                raise classify(registry, str(chunk["error"]), secret)
            aux = chunk.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
    except docker.errors.APIError as exc:
        raise classify(registry, str(exc.explanation or exc), secret) from None
    except (requests.ConnectionError, ConnectionError) as exc:
        raise EngineError(f"lost the Docker engine while pushing {ref}: {type(exc).__name__}") from None
    if not digest:
        raise RegistryError(f"registry {registry}: the push of {ref} ended without a manifest digest")
    return digest



def push_image(client: DockerClient, registry_client: RegistryClient, service: str, image_id: str, version: str, *,
               log: Callable[[str], None] = lambda _: None,
               on_progress: Callable[[dict[str, Any]], None] | None = None, cache_key: str | None = None,
               version_tags: bool = True) -> PushResult:
    """Push one service's image under its release tags (REGISTRY/nexus/<service>:VERSION and
    :latest), or, with version_tags False (the version is already released, registry.released),
    under build-<image id> alone: the released version's tags are never moved. A tag the registry already has for this very image is left alone; a tag naming
    anything else is pushed again. Transient failures are retried with backoff. With a
    cache_key (the image passed all its tests), the pushed manifest is also tagged cache-<key>;
    a failure there is logged and leaves the push as it is (the cache is an optimisation)."""
    import docker.errors

    registry = registry_client.registry
    started = time.monotonic()
    try:
        image = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        raise RegistryError(f"service {service}: image {image_id} is gone from the engine; rebuild it") from None
    release = release_tags(registry, service, version)
    repo = release[0].rpartition(":")[0]
    repository = registry_client.repository(service)
    digest = local_repo_digest(image, repo)
    if not version_tags:
        # The released tag may name this very image (a fresh machine pulled the release from the
        # registry cache): it is the release's own, so there is nothing to push, under any tag.
        released = registry_client.manifest_digest(repository, version, on_retry=log)
        version_tags = released is not None and (
            released == digest or registry_client.image_id(repository, released) == image.id)
    refs = release if version_tags else [f"{repo}:{unreleased_tag(image.id)}"]
    attempts = 0
    pushed = False
    in_registry = False
    manifest: Manifest | None = None  # the image's manifest as the registry holds it, read once
    retagged: list[str] = []
    for ref in refs:
        tag = ref.rpartition(":")[2]
        if ref not in image.tags:  # the release tag names this image before it is pushed
            image.tag(repo, tag)
        remote = registry_client.manifest_digest(repository, tag, on_retry=log)
        if digest is None and remote is not None and registry_client.image_id(repository, remote) == image.id:
            digest, in_registry = remote, True  # this very image, pushed from another engine
        if digest is not None and remote == digest:
            continue
        if digest is not None and manifest is None:
            # The engine pushed (or pulled) this image here before: a new version of an unchanged
            # image is its manifest under one more tag, the same bytes, no blob moved. The GET by
            # digest checks the bytes; a registry that lost the manifest gets a real push.
            manifest = registry_client.manifest(repository, digest)
            in_registry = manifest is not None
        if in_registry and manifest is not None:  # its manifest is there under another tag: one manifest PUT
            registry_client.put_manifest(repository, manifest, tag, on_retry=log)
            retagged.append(ref)
            pushed = True
            continue

        def push_once(ref: str = ref) -> str:
            nonlocal attempts
            attempts += 1
            return engine_push(client, ref, registry, registry_client.credentials, on_progress)

        def on_retry(text: str, ref: str = ref) -> None:
            log(f"push of {ref}: {text}")

        digest = with_retries(push_once, on_retry=on_retry)
        pushed = True
    assert digest is not None  # set by the first push, or found in place for every tag
    there = registry_client.manifest_digest(repository, refs[0].rpartition(":")[2], on_retry=log)
    if there != digest:
        raise RegistryError(f"registry {registry}: {refs[0]} names {there or 'nothing'} after the push, "
                            f"not {digest}: another push raced this one")
    cached, cache_tagged = "", False
    if cache_key:
        try:
            cache_tagged = registry_client.tag_manifest(repository, digest, cache_tag(cache_key), on_retry=log)
            cached = f"{repo}:{cache_tag(cache_key)}"
        except RegistryError as exc:
            log(f"not put in the registry cache: {exc}")
    return PushResult(service=service, image_id=image.id, digest=digest, repo_digest=f"{repo}@{digest}",
                      tag=release[0], tags=refs, registry=registry, pushed=pushed,
                      seconds=round(time.monotonic() - started, 2), attempts=attempts, cache_tag=cached,
                      cache_tagged=cache_tagged, version_tagged=version_tags, retagged=retagged)
