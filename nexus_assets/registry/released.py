"""A released version is immutable: what its release tag holds, and whether the registry's
version tags still name the released images.

The release tag `verified_release_vX.Y.Z` of the target repository holds the released manifest
(`releases/vX.Y.Z/artifacts_manifest.json` in its release commit). Once it exists, the registry's
`REGISTRY/nexus/<service>:X.Y.Z` tags belong to that release: a run never pushes over them
(publish pushes a changed image under `build-<image id>` only), the release gate reads them
before tagging, the next run reports a tag that moved, and `nexus-agent repair-tags --version
X.Y.Z` puts each one back on its released digest (one manifest PUT of the released manifest).

Shared by publish (may this run write the version tags?), release (the registry gate) and the
CLI (the report on a run with nothing to do, and repair-tags)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nexus_assets.core.errors import NexusError
from nexus_assets.core.git import git_answer
from nexus_assets.core.release_version import is_git_checkout, release_tag
from nexus_assets.core.report_paths import ARTIFACTS_MANIFEST_FILE

if TYPE_CHECKING:  # requests loads only when the registry is asked: a run with nothing to do never asks
    from nexus_assets.registry.client import CredentialSource, RegistryClient

IMMUTABLE = "a released version is immutable: a new version is required to ship changed images"
UNRELEASED_TAG_PREFIX = "build-"  # the registry tag of an image pushed while its version is released


def unreleased_tag(image_id: str) -> str:
    """The tag an image is pushed under while its version is already released: it only keeps the
    manifest (pulled by digest), never a version."""
    return UNRELEASED_TAG_PREFIX + image_id.removeprefix("sha256:")[:16]


def released_manifest(repo: Path, version: str) -> dict[str, Any] | None:
    """The manifest the release tag of version holds, or None when version is not released (or
    the target is not a git checkout of its own: it has no release tags)."""
    tag = release_tag(version)
    if not is_git_checkout(repo) or git_answer(repo, "rev-parse", "--verify", "-q", f"refs/tags/{tag}") is None:
        return None
    shown = git_answer(repo, "show", f"refs/tags/{tag}:releases/v{version}/{PurePosixPath(ARTIFACTS_MANIFEST_FILE).name}")
    try:
        manifest = json.loads(shown or "")
    except ValueError:  # a tag made by hand: released, its images unknown
        return {"images": []}
    return manifest if isinstance(manifest, dict) else {"images": []}


def digests(manifest: dict[str, Any]) -> dict[str, str]:
    """{service: registry digest} of every image a manifest records in the registry."""
    return {str(i["service"]): str(i["digest"]) for i in manifest.get("images") or []
            if isinstance(i, dict) and i.get("digest") and i.get("service")}


def _repository(entry: dict[str, Any]) -> tuple[str, str] | None:
    """(registry host, repository path under /v2/) of a manifest entry, from its repo_digest."""
    name = str(entry.get("repo_digest") or "").split("@", 1)[0]
    host, _, path = name.partition("/")
    return (host, path) if host and path else None


def version_tag_problems(images: Iterable[dict[str, Any]], version: str, access: CredentialSource,
                         expected: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """One line per image whose version tag in the registry does not name the digest expected
    (default: the entry's own `digest`; expected: {service: (digest, what it is)}), naming the
    tag and both digests. A registry that cannot be asked is one line naming it."""
    from nexus_assets.registry.client import RegistryClient

    problems: list[str] = []
    clients: dict[str, RegistryClient] = {}
    try:
        credentials = access.credentials()
        asked: list[tuple[RegistryClient, str, str, str, str]] = []
        for entry in images:
            service = str(entry.get("service"))
            want, what = (expected or {}).get(service) or (str(entry.get("digest") or ""), "the manifest's")
            where = _repository(entry)
            if not want or where is None:
                continue
            registry, repository = where
            if registry not in clients:
                clients[registry] = RegistryClient(registry, credentials)
            asked.append((clients[registry], registry, repository, want, what))
        # One HEAD a tag, several at a time: a run that launches nothing asks this for every service.
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(lambda a: a[0].manifest_digest(a[2], version), asked))
        problems += [f"{registry}/{repository}:{version} names {there or 'nothing'}, not {what} {want}"
                     for (_, registry, repository, want, what), there in zip(asked, found, strict=True) if there != want]
    except NexusError as exc:
        problems.append(f"the registry's version tags cannot be read: {exc}")
    finally:
        for client in clients.values():
            client.close()
    return problems


def moved_tags(released: dict[str, Any], version: str, access: CredentialSource) -> list[str]:
    """version_tag_problems of a released manifest: each tag that no longer names its released digest."""
    images = released.get("images") or []
    return version_tag_problems(images, version, access, {str(i["service"]): (str(i["digest"]), "the released")
                                                  for i in images if i.get("digest")})


def provenance_subject(artifacts: Path, entry: dict[str, Any]) -> str | None:
    """The sha256 digest the image's provenance statement names as its subject (the signature is
    the evidence pack gate's to check), or None when the manifest records no provenance."""
    provenance = entry.get("provenance") or {}
    if not provenance.get("path"):
        return None
    try:
        envelope = json.loads((artifacts / provenance["path"]).read_text("utf-8").splitlines()[0])
        statement = json.loads(base64.b64decode(envelope["payload"]))
        subjects = statement.get("subject") or []
        found = [s["digest"]["sha256"] for s in subjects if isinstance(s, dict) and (s.get("digest") or {}).get("sha256")]
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return "unreadable"
    return f"sha256:{found[0]}" if found else "none"


def repair_tags(manifest: dict[str, Any], version: str, access: CredentialSource) -> list[str]:
    """Point every image's version tag back at its released digest (a manifest PUT of the
    released manifest under the tag); one line per tag, saying what was done."""
    from nexus_assets.registry.client import RegistryClient

    done: list[str] = []
    credentials = access.credentials()
    for entry in manifest.get("images") or []:
        where = _repository(entry)
        digest = entry.get("digest")
        if where is None or not digest:
            continue
        registry, repository = where
        with RegistryClient(registry, credentials) as client:
            before = client.manifest_digest(repository, version)
            written = client.tag_manifest(repository, str(digest), version)
        ref = f"{registry}/{repository}:{version}"
        done.append(f"{ref} re-pointed from {before or 'nothing'} to {digest}" if written else
                    f"{ref} already names {digest}")
    return done
