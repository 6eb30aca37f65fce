"""A new version of an unchanged image is one manifest PUT in the registry: no engine push, no
blob uploaded, the new tag naming the very manifest (same digest). Counted in the access log of a
real registry with htpasswd auth."""

from __future__ import annotations

import re

import pytest

from nexus_assets.publish.push import push_image
from nexus_assets.registry.client import RegistryClient, credentials_from_env

pytestmark = pytest.mark.docker

_REQUEST = re.compile(r'"([A-Z]+) (/v2/[^ ]*) HTTP/[\d.]+" (\d{3})')  # the registry's access log


def _logged(make_registry):
    """A registry of the test's own, and a reader of the requests it answered since the last
    read, from its access log: [(method, path)] (401 challenges left out)."""
    server = make_registry()
    log = server.root / "registry.log"
    seen = [0]

    def since() -> list[tuple[str, str]]:
        text = log.read_text(errors="replace")
        new, seen[0] = text[seen[0]:], len(text)
        return [(m[1], m[2]) for m in _REQUEST.finditer(new) if m[3] != "401"]

    return server, since


def test_a_new_version_of_an_unchanged_image_is_one_manifest_put(docker_client, make_registry, images):
    server, requests_since = _logged(make_registry)
    client = RegistryClient(server.address, credentials_from_env())
    image_id = images(256 * 1024)
    first = push_image(docker_client, client, "svc", image_id, "1.4.0")
    first_requests = requests_since()
    assert first.pushed and first.attempts == 1, "the engine pushed the version tag; latest is a manifest PUT"
    assert first.retagged == [f"{server.address}/nexus/svc:latest"]
    assert any(m == "PUT" and "/blobs/uploads/" in u for m, u in first_requests), "the first push moved no blob?"

    newer = push_image(docker_client, client, "svc", image_id, "1.4.1")
    moved = requests_since()
    assert newer.pushed and newer.attempts == 0, "the engine pushed again"
    assert newer.retagged == [f"{server.address}/nexus/svc:1.4.1"]
    assert newer.digest == first.digest and newer.repo_digest == first.repo_digest
    assert not [r for r in moved if "/blobs/" in r[1]], f"a blob was read or written: {moved}"
    puts = [u for m, u in moved if m == "PUT"]
    assert puts == ["/v2/nexus/svc/manifests/1.4.1"], moved
    assert client.manifest_digest("nexus/svc", "1.4.1") == first.digest
    assert client.manifest_digest("nexus/svc", "1.4.0") == first.digest, "the earlier version's tag moved"
    assert f"{server.address}/nexus/svc:1.4.1" in docker_client.images.get(image_id).tags
    client.close()


def test_a_registry_that_lost_the_manifest_gets_a_real_push(docker_client, make_registry, images):
    """The engine remembers a digest for the repository, but a new registry at the same address
    has nothing: the GET by digest finds no manifest, so the engine pushes the layers."""
    first_server = make_registry()
    image_id = images()
    with RegistryClient(first_server.address, credentials_from_env()) as client:
        push_image(docker_client, client, "svc", image_id, "2.0.0")
    first_server.stop(kill=True)
    import shutil

    shutil.rmtree(first_server.root / "data")
    (first_server.root / "data").mkdir()
    first_server.start()
    with RegistryClient(first_server.address, credentials_from_env()) as client:
        again = push_image(docker_client, client, "svc", image_id, "2.0.1")
        assert again.attempts == 1 and again.pushed
        assert client.manifest_digest("nexus/svc", "2.0.1") == again.digest
