"""What a copy fetched from the registry must be to be used: signed by this key, about this very
image (repository and digest), and the SBOM the signed statement names, describing this image
id. Each way it can be wrong is refused with its reason."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.attest.in_registry import (
    Refused,
    artifact_manifest,
    artifact_tag,
    check_sbom,
    sbom_summary,
    verify_provenance,
)
from nexus_assets.attest.provenance import envelope_line, statement_bytes
from nexus_assets.attest.sbom import IMAGE_ID_PROPERTY
from nexus_assets.attest.signing import sign_envelope
from nexus_assets.evidence.check import PAYLOAD_TYPE
from nexus_assets.registry.client import Manifest

DIGEST = "sha256:" + "ab" * 32
REPO_DIGEST = f"127.0.0.1:5000/team/nexus/svc@{DIGEST}"
IMAGE_ID = "sha256:" + "cd" * 32


def _sbom(image_id: str = IMAGE_ID) -> bytes:
    return json.dumps({"metadata": {"component": {"properties": [{"name": IMAGE_ID_PROPERTY, "value": image_id}]}},
                       "components": [{"purl": "pkg:deb/debian/libc6@2.36"}, {"purl": "pkg:npm/ms@2.1.3"}]}).encode()


def _envelope(key: Ed25519PrivateKey, sbom: bytes, digest: str = DIGEST) -> bytes:
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": REPO_DIGEST.split("@")[0], "digest": {"sha256": digest.removeprefix("sha256:")}}],
                 "predicate": {"buildDefinition": {"internalParameters": {"imageId": IMAGE_ID}},
                               "runDetails": {"metadata": {"invocationId": "run-1"}, "byproducts": [
                                   {"name": "sbom", "digest": {"sha256": hashlib.sha256(sbom).hexdigest()}}]}}}
    return envelope_line(sign_envelope(key, PAYLOAD_TYPE, statement_bytes(statement)))


def test_a_good_copy_verifies_and_says_what_it_holds():
    key = Ed25519PrivateKey.generate()
    sbom = _sbom()
    verified = verify_provenance(_envelope(key, sbom), key.public_key(), REPO_DIGEST)
    assert verified.image_id == IMAGE_ID and verified.built_by_run == "run-1"
    assert verified.sbom_sha256 == hashlib.sha256(sbom).hexdigest()
    assert sbom_summary(check_sbom(sbom, verified, IMAGE_ID)) == {
        "components": 2, "by_ecosystem": {"deb": 1, "npm": 1}, "os_database": "dpkg"}


def test_each_wrong_copy_is_refused_with_its_reason():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    sbom = _sbom()
    with pytest.raises(Refused, match="does not verify with key"):
        verify_provenance(_envelope(other, sbom), key.public_key(), REPO_DIGEST)
    with pytest.raises(Refused, match="signed subject is not"):
        verify_provenance(_envelope(key, sbom, "sha256:" + "ef" * 32), key.public_key(), REPO_DIGEST)
    line = bytearray(_envelope(key, sbom))
    line[line.index(b'"sig":"') + 8] ^= 1  # one changed byte in the signature
    with pytest.raises(Refused):
        verify_provenance(bytes(line), key.public_key(), REPO_DIGEST)
    with pytest.raises(Refused, match="not a JSON DSSE envelope"):
        verify_provenance(b"not json\n", key.public_key(), REPO_DIGEST)
    verified = verify_provenance(_envelope(key, sbom), key.public_key(), REPO_DIGEST)
    with pytest.raises(Refused, match="sha256 is not the one the signed provenance records"):
        check_sbom(sbom.replace(b"2.36", b"2.37"), verified, IMAGE_ID)
    other_image = _sbom("sha256:" + "00" * 32)
    with pytest.raises(Refused, match="describes image"):
        check_sbom(other_image, verify_provenance(_envelope(key, other_image), key.public_key(), REPO_DIGEST), IMAGE_ID)


def test_the_artifact_manifest_is_made_from_the_bytes_alone_and_names_its_image():
    subject = Manifest(DIGEST, "application/vnd.docker.distribution.manifest.v2+json", b"{}" * 10)
    one = artifact_manifest("sbom", b"doc", subject, "svc.cdx.json")
    assert one == artifact_manifest("sbom", b"doc", subject, "svc.cdx.json")
    body = json.loads(one.body)
    assert body["subject"] == {"mediaType": subject.media_type, "digest": DIGEST, "size": 20}
    assert body["layers"][0]["mediaType"] == "application/vnd.cyclonedx+json" == body["artifactType"]
    assert artifact_tag(DIGEST, "att") == "sha256-" + "ab" * 32 + ".att"
