"""Each image's SBOM and signed provenance kept in the registry beside the image, so that any
machine (a fresh CI runner with an empty Dagster instance) fetches and verifies them instead of
making them again.

Where: cosign's tag scheme, `REGISTRY/nexus/<service>:sha256-<hex of the image digest>.sbom`
and `.att`, each an OCI image manifest with one layer (the CycloneDX document; the DSSE envelope
of the in-toto statement), an empty config, an `artifactType` and a `subject` naming the image
manifest (OCI 1.1). Tags and not the referrers API alone: the registry here (distribution 2.8)
and many others have no referrers endpoint, and a tag derived from the digest is found with one
GET on any registry; the `subject` field still lets a registry that has the API list them.
Plain registry API calls through core.registry's client (credentials, retries, messages without
secrets), not `oras`: two small blobs and a manifest are a few requests, and one client keeps
one way of speaking to the registry.

Trust: what is fetched is used only when the envelope's signature verifies with this run's
signing key, its subject is this very image (repository and digest), and the SBOM's sha256 is
the one the signed statement records as its byproduct and the SBOM names this image id. The
manifests are made from the bytes alone, so the same SBOM or envelope gives the same manifest
digest and storing it twice writes nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexus_assets.attest.provenance import SBOM_MEDIA_TYPE
from nexus_assets.attest.sbom import IMAGE_ID_PROPERTY
from nexus_assets.core.errors import RegistryError
from nexus_assets.evidence.check import PAYLOAD_TYPE, CheckFailed, open_envelope
from nexus_assets.registry.client import Manifest, RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
KINDS = {"sbom": SBOM_MEDIA_TYPE, "att": DSSE_MEDIA_TYPE}  # tag suffix -> the layer's media type


class Refused(Exception):
    """A copy in the registry that is not to be used (the reason, one line)."""


def artifact_tag(digest: str, kind: str) -> str:
    """sha256:abc... -> sha256-abc....sbom (or .att), as cosign names them."""
    return digest.replace(":", "-") + "." + kind


def artifact_manifest(kind: str, data: bytes, subject: Manifest, title: str) -> Manifest:
    """The OCI manifest that holds data (its only layer) and refers to the subject image."""
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": KINDS[kind],
        "config": {"mediaType": EMPTY_CONFIG, "digest": "sha256:" + hashlib.sha256(EMPTY).hexdigest(), "size": 2},
        "layers": [{"mediaType": KINDS[kind], "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                    "size": len(data), "annotations": {"org.opencontainers.image.title": title}}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.body)},
    }, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return Manifest(digest="sha256:" + hashlib.sha256(body).hexdigest(), media_type=OCI_MANIFEST, body=body)


def store(client: RegistryClient, repository: str, subject: Manifest, files: dict[str, tuple[bytes, str]]) -> int:
    """Put each {kind: (bytes, title)} under its tag beside the subject image, unless the tag
    names that very manifest already (one HEAD); how many were written."""
    written = 0
    for kind, (data, title) in files.items():
        manifest = artifact_manifest(kind, data, subject, title)
        tag = artifact_tag(subject.digest, kind)
        if client.manifest_digest(repository, tag) == manifest.digest:
            continue
        client.put_blob(repository, EMPTY)
        client.put_blob(repository, data)
        client.put_manifest(repository, manifest, tag)
        written += 1
    return written


def fetch(client: RegistryClient, repository: str, digest: str, kind: str) -> bytes | None:
    """The bytes kept under the image's .sbom or .att tag, or None when there is none; Refused
    when the manifest there is not one layer of the kind, or refers to another image."""
    manifest = client.manifest(repository, artifact_tag(digest, kind))
    if manifest is None:
        return None
    try:
        body = json.loads(manifest.body)
        layers = body.get("layers") or []
        subject = (body.get("subject") or {}).get("digest")
    except (ValueError, AttributeError):
        raise Refused(f"{artifact_tag(digest, kind)} is not a JSON manifest") from None
    if subject not in (None, digest):
        raise Refused(f"{artifact_tag(digest, kind)} refers to {subject}, not the image {digest}")
    if len(layers) != 1 or not isinstance(layers[0], dict) or layers[0].get("mediaType") != KINDS[kind]:
        raise Refused(f"{artifact_tag(digest, kind)} does not hold one {KINDS[kind]} layer")
    try:
        return client.blob(repository, str(layers[0].get("digest")))  # checked against its digest
    except RegistryError as exc:
        raise Refused(str(exc)) from None


@dataclass(frozen=True)
class Verified:
    """A signed provenance whose signature and subject verified, and what it says."""

    statement: dict[str, Any]
    key_id: str
    sbom_sha256: str  # the SBOM's sha256 the statement records as its byproduct

    @property
    def image_id(self) -> str:
        internal = (self.statement.get("predicate") or {}).get("buildDefinition", {}).get("internalParameters") or {}
        return str(internal.get("imageId") or "")

    @property
    def recipe(self) -> dict[str, Any]:
        """How the statement and its SBOM were made (attest.provenance.RECIPE when it recorded one)."""
        internal = (self.statement.get("predicate") or {}).get("buildDefinition", {}).get("internalParameters") or {}
        return dict(internal.get("nexusRecipe") or {})

    @property
    def built_by_run(self) -> str:
        return str(((self.statement.get("predicate") or {}).get("runDetails") or {}).get("metadata", {})
                   .get("invocationId") or "")


def verify_provenance(line: bytes, public_key: Ed25519PublicKey, repo_digest: str) -> Verified:
    """The statement of a .intoto.jsonl line when its signature verifies with public_key and its
    subject is repo_digest (REGISTRY/nexus/<service>@sha256:...); Refused otherwise."""
    try:
        envelope = json.loads(line.decode("utf-8").splitlines()[0])
        statement = json.loads(open_envelope(envelope, public_key, PAYLOAD_TYPE))
    except CheckFailed as exc:
        raise Refused(str(exc)) from None
    except (ValueError, IndexError, UnicodeDecodeError, AttributeError, TypeError):
        raise Refused("not a JSON DSSE envelope") from None
    name, _, digest = repo_digest.partition("@")
    subjects = {(s.get("name"), (s.get("digest") or {}).get("sha256"))
                for s in statement.get("subject") or [] if isinstance(s, dict)}
    if (name, digest.removeprefix("sha256:")) not in subjects:
        raise Refused(f"its signed subject is not {repo_digest}")
    byproducts = ((statement.get("predicate") or {}).get("runDetails") or {}).get("byproducts") or []
    sbom = next((str((b.get("digest") or {}).get("sha256") or "") for b in byproducts
                 if isinstance(b, dict) and b.get("name") == "sbom"), "")
    keys = [str(s.get("keyid") or "") for s in envelope.get("signatures") or [] if isinstance(s, dict)]
    return Verified(statement, keys[0] if keys else "", sbom)


def check_sbom(document: bytes, verified: Verified, image_id: str) -> dict[str, Any]:
    """The SBOM document when it is the one the signed statement names and describes image_id;
    Refused otherwise. Returns the parsed document."""
    if hashlib.sha256(document).hexdigest() != verified.sbom_sha256:
        raise Refused("its sha256 is not the one the signed provenance records")
    try:
        bom = json.loads(document)
        properties = {p.get("name"): p.get("value") for p in (bom.get("metadata") or {}).get("component", {})
                      .get("properties") or [] if isinstance(p, dict)}
    except (ValueError, AttributeError):
        raise Refused("not a CycloneDX JSON document") from None
    if properties.get(IMAGE_ID_PROPERTY) != image_id:
        raise Refused(f"it describes image {properties.get(IMAGE_ID_PROPERTY)}, not {image_id}")
    return dict(bom)


def sbom_summary(bom: dict[str, Any]) -> dict[str, Any]:
    """components, by_ecosystem and os_database of an SBOM, as attest.steps.write_sbom says them."""
    kinds: dict[str, int] = {}
    for component in bom.get("components") or []:
        purl = str(component.get("purl") or "") if isinstance(component, dict) else ""
        kind = purl.removeprefix("pkg:").split("/", 1)[0] if purl.startswith("pkg:") else "unknown"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"components": sum(kinds.values()), "by_ecosystem": dict(sorted(kinds.items())),
            "os_database": "dpkg" if "deb" in kinds else "apk" if "apk" in kinds else "none"}
