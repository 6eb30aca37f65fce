"""SBOMs and signed provenance not made twice for the same image.

- A provenance whose subject did not change (the same repository and digest: an unchanged image
  under a new version is the same manifest under one more tag) and whose SBOM did not change is
  kept as it is: its file verifies with this run's key, so it is not signed again.
- On a machine without them (a fresh runner), both are fetched from the registry, where the
  provenance step stores them beside the image (attest.in_registry), and verified there: the
  signature with this run's key, the subject, the SBOM's sha256 against the signed statement.
  A copy missing is made here; a copy refused is made here too, and the log says why."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexus_assets.attest.in_registry import Refused, Verified, check_sbom, fetch, sbom_summary, store, verify_provenance
from nexus_assets.attest.provenance import RECIPE
from nexus_assets.attest.steps import provenance_relpath, sbom_relpath
from nexus_assets.core.errors import NexusError
from nexus_assets.core.fileio import write_atomic
from nexus_assets.registry.client import CredentialSource, RegistryClient

WORKERS = 8  # registry calls in flight: small requests, mostly waiting


def _client(registry: str, access: CredentialSource) -> RegistryClient:
    return RegistryClient(registry, access.credentials())


def provenance_made(relpath: str, data: bytes, verified: Verified, digest: str, repo_digest: str, how: str) -> dict[str, Any]:
    """A provenance/<service> record of a statement kept, as attest.steps.write_provenance says one."""
    return {"path": relpath, "sha256": hashlib.sha256(data).hexdigest(), "subject": repo_digest, "digest": digest,
            "image_id": verified.image_id, "key_id": verified.key_id, "sbom_sha256": verified.sbom_sha256,
            "built_by_run": verified.built_by_run, "reused": how}


def kept_provenance(artifacts: Path, service: str, public_key: Ed25519PublicKey, pushed: dict[str, Any], sbom_sha256: str,
                    image_id: str) -> dict[str, Any] | None:
    """The provenance file already here, when it is this image's, signed by this key, and names
    this SBOM: its record (nothing is signed again). None when it is not."""
    relpath = provenance_relpath(service)
    try:
        data = (artifacts / relpath).read_bytes()
        verified = verify_provenance(data, public_key, str(pushed["repo_digest"]))
    except (OSError, KeyError, Refused):
        return None
    if verified.sbom_sha256 != sbom_sha256 or verified.image_id != image_id or verified.recipe != RECIPE:
        return None
    return provenance_made(relpath, data, verified, str(pushed["digest"]), str(pushed["repo_digest"]), "kept")


def _fetch_one(registry: str, access: CredentialSource, artifacts: Path, service: str, image_id: str, pushed: dict[str, Any],
               public_key: Ed25519PublicKey) -> tuple[dict[str, Any] | None, str | None]:
    """(the SBOM record, None) when both copies in the registry verified (both files written),
    (None, None) when there are none, (None, why) when they were refused."""
    digest, repo_digest = str(pushed["digest"]), str(pushed["repo_digest"])
    repository = repo_digest.split("@", 1)[0].split("/", 1)[1]
    try:
        with _client(registry, access) as client:
            envelope = fetch(client, repository, digest, "att")
            document = fetch(client, repository, digest, "sbom") if envelope is not None else None
        if envelope is None or document is None:
            return None, None
        verified = verify_provenance(envelope, public_key, repo_digest)
        if verified.image_id != image_id:
            raise Refused(f"its provenance is of image {verified.image_id}, not {image_id}")
        if verified.recipe != RECIPE:  # made by another version of this stage: made again here
            raise Refused(f"made as {verified.recipe or 'an older recipe'}, not {RECIPE}")
        bom = check_sbom(document, verified, image_id)
    except Refused as exc:
        return None, str(exc)
    except NexusError as exc:
        return None, f"the registry could not be read: {exc}"
    write_atomic(artifacts / sbom_relpath(service), document)
    write_atomic(artifacts / provenance_relpath(service), envelope)  # the provenance step keeps it (kept_provenance)
    return {"path": sbom_relpath(service), "sha256": hashlib.sha256(document).hexdigest(), "image_id": image_id,
            **sbom_summary(bom), "from_registry": f"{repo_digest.split('@', 1)[0]}:{digest.replace(':', '-')}.sbom",
            "provenance_key_id": verified.key_id}, None


def sboms_from_registry(registry: str, access: CredentialSource, artifacts: Path, wanted: dict[str, tuple[str, dict[str, Any]]],
                        public_key: Ed25519PublicKey, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """{service: SBOM record} of the services whose SBOM and provenance the registry holds and
    that verify. wanted: {service: (current image id, its pushed/<service> record of that image)}."""
    def one(item: tuple[str, tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any] | None, str | None]:
        name, (image_id, pushed) = item
        return name, *_fetch_one(registry, access, artifacts, name, image_id, pushed, public_key)

    found: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for name, made, refused in pool.map(one, sorted(wanted.items())):
            if made is not None:
                found[name] = made
            elif refused:
                log(f"sbom/{name}: the copy in the registry is refused ({refused}); made again from the image")
    return found


def store_all(registry: str, access: CredentialSource, artifacts: Path, jobs: dict[str, tuple[dict[str, Any], str, str]],
              log: Callable[[str], None]) -> dict[str, str]:
    """Put each service's SBOM and provenance beside its image in the registry (unless there).
    jobs: {service: (pushed record, SBOM relpath, provenance relpath)}. Returns {service: what
    the registry holds now, or why not}; a failure is a warning, the files here stand."""
    def one(item: tuple[str, tuple[dict[str, Any], str, str]]) -> tuple[str, str]:
        name, (pushed, sbom, provenance) = item
        digest, repo_digest = str(pushed["digest"]), str(pushed["repo_digest"])
        name_in_registry = repo_digest.split("@", 1)[0]
        repository = name_in_registry.split("/", 1)[1]
        try:
            with _client(registry, access) as client:
                subject = client.manifest(repository, digest)
                if subject is None:
                    return name, f"not stored: the registry has no {repo_digest}"
                files = {"sbom": ((artifacts / sbom).read_bytes(), Path(sbom).name),
                         "att": ((artifacts / provenance).read_bytes(), Path(provenance).name)}
                written = store(client, repository, subject, files)
        except (OSError, NexusError) as exc:
            log(f"{name}: SBOM and provenance not stored in the registry: {exc}")
            return name, f"not stored: {exc}"
        tags = f"{name_in_registry}:{digest.replace(':', '-')}.{{sbom,att}}"
        return name, f"{tags} ({'written now' if written else 'already there'})"

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(pool.map(one, sorted(jobs.items())))
