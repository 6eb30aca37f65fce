"""Pushing one image to a real registry with htpasswd auth (a `docker-registry serve` of the
test's own): good credentials and a pull by digest, nothing pushed twice, wrong credentials,
registry down, and a push cut half-way by the registry dying, then completed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from nexus_assets.core.errors import RegistryAuthError, RegistryError
from nexus_assets.publish.push import push_image
from nexus_assets.registry.client import (
    Credentials,
    RegistryClient,
    TransientRegistryError,
    credentials_from_env,
    with_retries,
)

pytestmark = pytest.mark.docker


def test_push_then_pull_by_digest_and_never_twice(docker_client, make_registry, images, registry_credentials):
    server = make_registry()
    registry = f"{server.address}/team"
    image_id = images()
    client = RegistryClient(registry, credentials_from_env())
    first = push_image(docker_client, client, "svc", image_id, "1.2.0")
    assert first.pushed and first.attempts == 1  # the version tag; latest is the same manifest PUT under it
    assert first.digest.startswith("sha256:") and first.digest != image_id  # a manifest digest, not the image id
    assert first.repo_digest == f"{registry}/nexus/svc@{first.digest}"
    assert first.tags == [f"{registry}/nexus/svc:1.2.0", f"{registry}/nexus/svc:latest"]
    assert client.manifest_digest("team/nexus/svc", "1.2.0") == first.digest

    again = push_image(docker_client, client, "svc", image_id, "1.2.0")
    assert not again.pushed and again.attempts == 0 and again.digest == first.digest

    newer = push_image(docker_client, client, "svc", image_id, "1.2.1")  # a new version: one manifest PUT
    assert newer.pushed and newer.attempts == 0 and newer.digest == first.digest

    docker_client.images.remove(image_id, force=True)  # every local tag and the image itself
    pulled = docker_client.images.pull(first.repo_digest, auth_config=credentials_from_env().auth_config())
    assert pulled.id == image_id
    client.close()


def test_a_released_version_pushes_under_its_build_tag_only_and_leaves_the_version_tags(
        docker_client, make_registry, images):
    server = make_registry()
    client = RegistryClient(server.address, credentials_from_env())
    released = push_image(docker_client, client, "svc", images(), "1.0.0")
    changed_id = images()
    changed = push_image(docker_client, client, "svc", changed_id, "1.0.0", version_tags=False)
    build = f"build-{changed_id.removeprefix('sha256:')[:16]}"
    assert changed.pushed and not changed.version_tagged and changed.digest != released.digest
    assert changed.tags == [f"{server.address}/nexus/svc:{build}"]
    assert changed.tag == f"{server.address}/nexus/svc:1.0.0"  # the release it is for, not a tag it wrote
    assert client.manifest_digest("nexus/svc", build) == changed.digest
    assert client.manifest_digest("nexus/svc", "1.0.0") == released.digest
    assert client.manifest_digest("nexus/svc", "latest") == released.digest
    client.close()


def test_a_tested_image_is_tagged_in_the_registry_cache_by_one_manifest_put(docker_client, make_registry, images):
    server = make_registry()
    client = RegistryClient(server.address, credentials_from_env())
    image_id = images()
    key = uuid.uuid4().hex
    first = push_image(docker_client, client, "svc", image_id, "1.0.0", cache_key=key)
    assert first.cache_tag == f"{server.address}/nexus/svc:cache-{key}" and first.cache_tagged
    assert client.manifest_digest("nexus/svc", f"cache-{key}") == first.digest, "the very manifest, another tag"
    assert first.attempts == 1, "the engine pushed the version tag only"
    assert not any("cache-" in tag for tag in docker_client.images.get(image_id).tags), "no local cache tag"
    again = push_image(docker_client, client, "svc", image_id, "1.0.0", cache_key=key)
    assert again.cache_tag == first.cache_tag and not again.cache_tagged and not again.pushed
    plain = push_image(docker_client, client, "svc", image_id, "1.0.0")  # tests not all passed: no cache tag
    assert plain.cache_tag == "" and not plain.cache_tagged

    # The same image in an engine that never pushed it (saved and loaded: no repo digest of its own):
    # the registry's manifest names its config, so nothing is pushed again.
    saved = b"".join(docker_client.images.get(image_id).save())
    docker_client.images.remove(image_id, force=True)
    assert docker_client.images.load(saved)[0].id == image_id
    assert not docker_client.images.get(image_id).attrs.get("RepoDigests")
    elsewhere = push_image(docker_client, client, "svc", image_id, "1.0.0")
    assert not elsewhere.pushed and elsewhere.attempts == 0 and elsewhere.digest == first.digest
    other = push_image(docker_client, client, "svc", images(), "2.0.0")  # :latest now names another image
    docker_client.images.remove(image_id, force=True)
    docker_client.images.load(saved)
    back = push_image(docker_client, client, "svc", image_id, "1.0.0")  # :latest back by one manifest PUT
    assert back.pushed and back.attempts == 0 and back.digest == first.digest != other.digest
    assert client.manifest_digest("nexus/svc", "latest") == first.digest
    client.close()


def test_wrong_credentials_fail_once_naming_the_registry_without_the_secret(docker_client, make_registry, images):
    server = make_registry()
    secret = f"wrong-{uuid.uuid4().hex}"
    client = RegistryClient(server.address, Credentials("nexus", secret, "REGISTRY_USERNAME/REGISTRY_PASSWORD"))
    assert secret not in repr(client.credentials)
    started = time.monotonic()
    with pytest.raises(RegistryAuthError) as refused:
        client.check()
    assert time.monotonic() - started < 2, "a refusal is never retried"
    message = str(refused.value)
    assert server.address in message and "REGISTRY_PASSWORD" in message and secret not in message
    assert "\n" not in message
    with pytest.raises(RegistryAuthError) as pushing:  # the engine's own refusal, the same way
        push_image(docker_client, client, "svc", images(), "1.0.0")
    assert server.address in str(pushing.value) and secret not in str(pushing.value)
    client.close()


def test_registry_down_is_a_clear_error_after_bounded_retries(make_registry):
    server = make_registry()
    server.stop(kill=True)
    client = RegistryClient(server.address, credentials_from_env())
    retries: list[str] = []
    started = time.monotonic()
    with pytest.raises(TransientRegistryError) as down:
        client.check(on_retry=retries.append)
    assert time.monotonic() - started < 15
    assert len(retries) == 3, retries  # four tries in all
    assert f"registry {server.address} cannot be reached" in str(down.value) and "connection refused" in str(down.value)
    assert isinstance(down.value, RegistryError)


def test_only_transient_failures_are_retried():
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise RegistryAuthError("registry r refused the credentials")

    with pytest.raises(RegistryAuthError):
        with_retries(refused, wait_max=0.01)
    assert len(calls) == 1

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise TransientRegistryError("registry r answered HTTP 503")
        return "ok"

    assert with_retries(flaky, wait_max=0.01) == "ok" and len(calls) == 4


def test_a_push_cut_by_the_registry_dying_completes_once_it_is_back(docker_client, make_registry, images):
    server = make_registry()
    image_id = images(size=48 * 1024 * 1024)  # big enough to be caught mid-upload
    client = RegistryClient(server.address, credentials_from_env())
    cut = threading.Event()

    def on_progress(chunk: dict) -> None:
        if chunk.get("status") == "Pushing" and not cut.is_set():
            cut.set()
            server.stop(kill=True)  # the registry dies half-way through the layer
            threading.Timer(1.0, server.start).start()  # and is back a second later

    statuses: list[str] = []
    logged: list[str] = []
    result = push_image(docker_client, client, "big", image_id, "1.0.0", log=logged.append,
                        on_progress=lambda c: (statuses.append(str(c.get("status"))), on_progress(c)))
    assert cut.is_set(), "the push was cut half-way"
    assert result.pushed and result.digest.startswith("sha256:")
    assert any(s.startswith("Retrying") for s in statuses) or result.attempts > 1, (statuses[-10:], logged)
    assert client.manifest_digest("nexus/big", "1.0.0") == result.digest
    docker_client.images.remove(image_id, force=True)
    assert docker_client.images.pull(result.repo_digest, auth_config=credentials_from_env().auth_config()).id == image_id
    client.close()
