"""`nexus-agent repair-tags --version X.Y.Z`: put the registry's version tags of a made release
back on its released digests (registry.released): for each image of the manifest the release tag
holds, one manifest PUT of the released manifest under the tag, when the tag names anything else.
The digests come from the release commit, never from the working copy."""

from __future__ import annotations

from nexus_assets.core.release_version import release_tag
from nexus_assets.core.settings import Settings
from nexus_assets.registry.released import moved_tags, released_manifest, repair_tags
from nexus_assets.resources.registry import Registry


def repair(settings: Settings) -> int:
    """0 when every version tag names its released digest afterwards; 2 when version is no release."""
    tag = release_tag(settings.version)
    released = released_manifest(settings.repo, settings.version)
    if released is None:
        print(f"nexus-agent: error: {tag} is not a release tag of {settings.repo}: nothing to repair")
        return 2
    registry = Registry(address=settings.registry)
    for line in repair_tags(released, settings.version, registry):
        print(f"[nexus] {line}")
    left = moved_tags(released, settings.version, registry)
    for line in left:
        print(f"[nexus] still wrong: {line}")
    print(f"[nexus] {tag}: {'registry tags on the released digests' if not left else 'NOT repaired'}")
    return 1 if left else 0
