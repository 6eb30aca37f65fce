"""SBOMs and signed provenance beside an image in a real registry with htpasswd auth (its own
`docker-registry serve`; no Docker engine: the image is put through the registry API): stored
once, fetched byte for byte and verified, a tampered or misplaced copy refused with its reason;
a tag written for an image already there is one manifest PUT, no blob request."""

from __future__ import annotations

import hashlib
import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.attest.in_registry import Refused, artifact_manifest, artifact_tag, fetch, store
from nexus_assets.attest.provenance import RECIPE, envelope_line, statement_bytes
from nexus_assets.attest.reuse import sboms_from_registry
from nexus_assets.attest.sbom import IMAGE_ID_PROPERTY
from nexus_assets.attest.signing import sign_envelope
from nexus_assets.evidence.check import PAYLOAD_TYPE
from nexus_assets.registry.client import Manifest, RegistryClient, credentials_from_env

_REQUEST = re.compile(r'"([A-Z]+) (/v2/[^ ]*) HTTP/[\d.]+" (\d{3})')  # the registry's access log
REPOSITORY = "team/nexus/svc"


def _requests(server, since: int = 0) -> tuple[list[tuple[str, str]], int]:
    text = (server.root / "registry.log").read_text(errors="replace")
    return [(m[1], m[2]) for m in _REQUEST.finditer(text[since:]) if m[3] != "401"], len(text)


def _image(client: RegistryClient) -> Manifest:
    """A small image put through the registry API: a config, one layer, its manifest under 1.0.0."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = hashlib.sha256(b"layer").digest() * 64
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "digest": client.put_blob(REPOSITORY, config), "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                   "digest": client.put_blob(REPOSITORY, layer), "size": len(layer)}]}).encode()
    manifest = Manifest("sha256:" + hashlib.sha256(body).hexdigest(),
                        "application/vnd.docker.distribution.manifest.v2+json", body)
    client.put_manifest(REPOSITORY, manifest, "1.0.0")
    return manifest


def _evidence(key: Ed25519PrivateKey, registry: str, digest: str, image_id: str,
              recipe: dict = RECIPE) -> tuple[bytes, bytes]:
    """(SBOM, provenance line) of the image, as the attest stage makes them (the fields checked)."""
    sbom = json.dumps({"metadata": {"component": {"properties": [{"name": IMAGE_ID_PROPERTY, "value": image_id}]}},
                       "components": [{"purl": "pkg:deb/debian/libc6@2.36"}]}).encode()
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": f"{registry.split('/')[0]}/{REPOSITORY}", "digest": {"sha256": digest.split(":")[1]}}],
                 "predicate": {"buildDefinition": {"internalParameters": {"imageId": image_id, "nexusRecipe": recipe}},
                               "runDetails": {"metadata": {"invocationId": "run-1"}, "byproducts": [
                                   {"name": "sbom", "digest": {"sha256": hashlib.sha256(sbom).hexdigest()}}]}}}
    return sbom, envelope_line(sign_envelope(key, PAYLOAD_TYPE, statement_bytes(statement)))


def test_a_new_tag_of_an_image_there_is_one_manifest_put(make_registry):
    server = make_registry()
    with RegistryClient(f"{server.address}/team", credentials_from_env()) as client:
        image = _image(client)
        _, mark = _requests(server)
        there = client.manifest(REPOSITORY, image.digest)
        assert there is not None
        client.put_manifest(REPOSITORY, there, "1.0.1")
        moved, _ = _requests(server, mark)
        assert moved == [("GET", f"/v2/{REPOSITORY}/manifests/{image.digest}"),
                         ("PUT", f"/v2/{REPOSITORY}/manifests/1.0.1")], moved
        assert client.manifest_digest(REPOSITORY, "1.0.1") == image.digest == client.manifest_digest(REPOSITORY, "1.0.0")


def test_stored_once_fetched_verified_and_a_tampered_copy_refused(make_registry, registry_resource, tmp_path):
    server = make_registry()
    registry = f"{server.address}/team"
    access = registry_resource(registry)  # who we are to it: the resource a step is handed
    key = Ed25519PrivateKey.generate()
    with RegistryClient(registry, credentials_from_env()) as client:
        image = _image(client)
        image_id = json.loads(image.body)["config"]["digest"]
        sbom, provenance = _evidence(key, registry, image.digest, image_id)
        files = {"sbom": (sbom, "svc.cdx.json"), "att": (provenance, "svc.intoto.jsonl")}
        assert store(client, REPOSITORY, image, files) == 2
        _, mark = _requests(server)
        assert store(client, REPOSITORY, image, files) == 0
        again, _ = _requests(server, mark)
        assert [m for m, _ in again] == ["HEAD", "HEAD"], "storing the same files again wrote something"
        assert fetch(client, REPOSITORY, image.digest, "sbom") == sbom
        assert fetch(client, REPOSITORY, image.digest, "att") == provenance
        assert fetch(client, REPOSITORY, "sha256:" + "0" * 64, "att") is None

        pushed = {"digest": image.digest, "repo_digest": f"{server.address}/{REPOSITORY}@{image.digest}"}
        warnings: list[str] = []
        found = sboms_from_registry(registry, access, tmp_path, {"svc": (image_id, pushed)}, key.public_key(), warnings.append)
        assert found["svc"]["from_registry"] == f"{server.address}/{REPOSITORY}:{artifact_tag(image.digest, 'sbom')}"
        assert found["svc"]["components"] == 1 and found["svc"]["by_ecosystem"] == {"deb": 1} and not warnings
        assert (tmp_path / "sbom" / "svc.cdx.json").read_bytes() == sbom
        assert (tmp_path / "provenance" / "svc.intoto.jsonl").read_bytes() == provenance

        # Another key: every copy refused, and the log says why.
        other = Ed25519PrivateKey.generate()
        assert sboms_from_registry(registry, access, tmp_path / "b", {"svc": (image_id, pushed)}, other.public_key(),
                                   warnings.append) == {}
        assert "signature does not verify with key" in warnings[-1] and "made again from the image" in warnings[-1]

        # Made by an older recipe of the attest stage (signed by this key): made again here.
        old_sbom, old_provenance = _evidence(key, registry, image.digest, image_id, {"sbom": "sbom-0"})
        store(client, REPOSITORY, image, {"sbom": (old_sbom, "svc.cdx.json"), "att": (old_provenance, "svc.intoto.jsonl")})
        assert sboms_from_registry(registry, access, tmp_path / "d", {"svc": (image_id, pushed)}, key.public_key(),
                                   warnings.append) == {}
        assert "made as {'sbom': 'sbom-0'}" in warnings[-1]
        store(client, REPOSITORY, image, files)

        # A tampered SBOM under the same tag: refused, nothing written.
        store(client, REPOSITORY, image, {"sbom": (sbom.replace(b"2.36", b"2.99"), "svc.cdx.json")})
        assert sboms_from_registry(registry, access, tmp_path / "c", {"svc": (image_id, pushed)}, key.public_key(),
                                   warnings.append) == {}
        assert "sha256 is not the one the signed provenance records" in warnings[-1]
        assert not (tmp_path / "c" / "sbom").exists()

        # A copy that refers to another image, put under this image's tag by hand.
        elsewhere = Manifest("sha256:" + "1" * 64, image.media_type, image.body)
        wrong = artifact_manifest("att", provenance, elsewhere, "svc.intoto.jsonl")
        client.put_manifest(REPOSITORY, wrong, artifact_tag(image.digest, "att"))
        try:
            fetch(client, REPOSITORY, image.digest, "att")
        except Refused as exc:
            assert "refers to sha256:111" in str(exc)
        else:
            raise AssertionError("a copy of another image was taken")
