"""The release gate that reads the registry itself (registry.released): before a release is tagged,
every image's version tag in the registry names the digest in the manifest and in its signed
provenance; for a version already released, every tag still names the released digest."""

from __future__ import annotations

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE
from nexus_assets.core.settings import Settings
from nexus_assets.registry.client import CredentialSource
from nexus_assets.registry.released import moved_tags, provenance_subject, released_manifest, version_tag_problems


def registry_gate(settings: Settings, registry: CredentialSource) -> list[str]:
    """One line per version tag (or provenance) that does not name the digest it must, naming both."""
    path = settings.workdir / ARTIFACTS_MANIFEST_FILE
    if not path.is_file():
        return []  # the manifest's own gate says so
    manifest = read_json(path)
    released = released_manifest(settings.repo, settings.version)
    if released is not None:  # made before: its tags must still name the released images
        return moved_tags(released, settings.version, registry)
    images = [i for i in manifest.get("images") or [] if i.get("digest")]
    problems = []
    for entry in images:
        signed = provenance_subject(settings.artifacts, entry)
        if signed is not None and signed != entry["digest"]:
            problems.append(f"{entry['service']}: the signed provenance names {signed}, the manifest {entry['digest']}")
    return problems + version_tag_problems(images, settings.version, registry)
