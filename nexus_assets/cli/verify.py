"""`nexus-agent verify`: are the released images what the signed evidence says?

For every image in WORKDIR/artifacts/artifacts_manifest.json: the provenance envelope's signature
with the public key (artifacts/signing_key.pub, or --public-key), the signed subject against the
manifest's registry digest, the SBOM's sha256 against the manifest and the signed statement
(evidence.check, the same code the evidence pack ships as verify.py), and then the registry
itself: the signed digest exists there, and the release tag still points at it. Last, the
release the manifest names must have been made from these very images (release_claim)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus_assets.core.errors import NexusError
from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import VERIFIED_RELEASE_FILE
from nexus_assets.core.release_version import release_tag
from nexus_assets.evidence.check import MANIFEST, CheckFailed, Verdict, check_folder, key_id, load_public_key
from nexus_assets.registry.released import digests
from nexus_assets.resources.registry import Registry


def _reference(entry: dict[str, Any]) -> tuple[str, str, str] | None:
    """(registry, repository, tag) of a manifest entry, from its repo_digest and tag."""
    repo_digest = entry.get("repo_digest") or ""
    if "@" not in repo_digest or "/" not in repo_digest:
        return None
    name = repo_digest.split("@", 1)[0]
    registry, repository = name.split("/", 1)
    tag = str(entry.get("tag") or entry.get("image") or "")
    if "/" in tag or ":" in tag.rsplit("/", 1)[-1]:
        tag = tag.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return registry, repository, tag


def check_registry(entry: dict[str, Any], verdict: Verdict) -> None:
    """The signed digest is in the registry, and the release tag points at it."""
    reference = _reference(entry)
    digest = entry.get("digest") or ""
    if reference is None:
        verdict.fail(f"the manifest gives no registry name for this image (repo_digest {entry.get('repo_digest')!r})")
        return
    registry, repository, tag = reference
    try:  # the same client (credentials, retries, messages without secrets) as the push
        with Registry(address=registry).client() as client:
            by_digest = client.manifest_digest(repository, digest)
            by_tag = client.manifest_digest(repository, tag) if tag else None
    except NexusError as exc:
        verdict.fail(str(exc))
        return
    if by_digest != digest:
        verdict.fail(f"registry {registry} has no manifest {repository}@{digest}")
    elif tag and by_tag != digest:
        verdict.fail(f"registry tag {registry}/{repository}:{tag} points at {by_tag or 'nothing'}, "
                     f"not the signed {digest}")
    else:
        verdict.notes.append(f"registry has it{f' under {tag}' if tag else ''}")


def release_claim(workdir: Path, manifest: dict[str, Any]) -> tuple[bool, str]:
    """(holds, line): whether the release the manifest names (`release_tag`) was made from these
    very images, read from the last release attempt (artifacts/verified_release.json) and the
    manifest the release kept (WORKDIR/releases/vX.Y.Z/). No record: no release is claimed."""
    tag = manifest.get("release_tag") or release_tag(str(manifest.get("version")))
    path = workdir / VERIFIED_RELEASE_FILE
    if not path.is_file():
        return True, f"RELEASE {tag}: no release record ({VERIFIED_RELEASE_FILE}): none claimed"
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return False, f"NOT RELEASED {tag}: {path} cannot be read"
    if record.get("version") != manifest.get("version"):
        return False, (f"NOT RELEASED {tag}: the last release attempt was of version {record.get('version')}, "
                       f"these artifacts are of {manifest.get('version')}")
    if not record.get("made"):
        why = (record.get("messages") or ["no reason recorded"])[0]
        return False, f"NOT RELEASED {tag}: the release was not made from these artifacts: {why}"
    kept = workdir / "releases" / f"v{manifest.get('version')}" / MANIFEST
    try:
        released = digests(read_json(kept))
    except (OSError, ValueError):
        return False, f"NOT RELEASED {tag}: the released manifest {kept} cannot be read"
    if released != digests(manifest):
        return False, f"NOT RELEASED {tag}: these images are not the released ones ({kept})"
    return True, f"RELEASE {tag}: made from these images"


def verify(workdir: Path, public_key: Path | None = None, *, registry: bool = True) -> int:
    """Print a verdict per image and a last line; 0 when every check passed, 1 otherwise."""
    artifacts = workdir / "artifacts"
    try:
        verdicts = check_folder(artifacts, public_key)
    except CheckFailed as exc:
        print(f"FAIL {exc}")
        print("NOT VERIFIED")
        return 1
    if registry:
        entries = {e.get("service"): e for e in read_json(artifacts / MANIFEST).get("images") or []}
        for verdict in verdicts:
            entry = entries.get(verdict.name)
            if entry is not None and verdict.passed:
                check_registry(entry, verdict)
    for verdict in verdicts:
        print(verdict.line())
    failed = [v for v in verdicts if not v.passed]
    released, line = release_claim(workdir, read_json(artifacts / MANIFEST))
    print(line)
    key = load_public_key(public_key or artifacts / "signing_key.pub")
    print(f"{'VERIFIED' if not failed and released else 'NOT VERIFIED'}: {len(verdicts) - len(failed)} passed, {len(failed)} failed "
          f"(public key id {key_id(key)}{'' if registry else '; registry not asked'})")
    return 1 if failed or not released else 0
