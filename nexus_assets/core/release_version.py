"""Release versions and the target repository's `verified_release_vX.Y.Z` tags.

The release version comes from --version / VERSION when given; otherwise it is the next patch
after the last verified_release tag of the target repository (1.0.0 when there is none), except
when that tag already released the commit the repository is at: then it is that version again,
so a re-run with nothing new makes no new release.

Only a repository that is its own git checkout is read: a target folder inside another
repository (the bundled sample lives inside this project's checkout) has no release tags."""

from __future__ import annotations

import re
from pathlib import Path

from nexus_assets.core.git import git_answer

TAG_PREFIX = "verified_release_v"
RELEASE_BRANCH = "verified_release"
FIRST_VERSION = "1.0.0"
# The trailer the release commit carries: which commit of the repository it released.
SOURCE_TRAILER = "Nexus-Source-Commit"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_GIVEN_VERSION = re.compile(r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of an X.Y.Z version, None for anything else."""
    match = _VERSION.match(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def valid_version(text: str) -> bool:
    """Whether text is X.Y.Z as a version given to a release may be: three whole numbers, no
    leading zeros (01.0.0 would be a second tag for what 1.0.0 tags)."""
    return bool(_GIVEN_VERSION.match(text))


def release_tag(version: str) -> str:
    """The release's git tag (verified_release_vX.Y.Z): every stage names it through here."""
    return f"{TAG_PREFIX}{version}"


def is_git_checkout(repo: Path) -> bool:
    """Whether repo is the top folder of its own git checkout (not a folder inside another one)."""
    top = git_answer(repo, "rev-parse", "--show-toplevel")
    return top is not None and Path(top).resolve() == repo.resolve()


def release_versions(repo: Path) -> list[str]:
    """Every X.Y.Z released by a verified_release_vX.Y.Z tag, oldest version first."""
    if not is_git_checkout(repo):
        return []
    listed = git_answer(repo, "tag", "--list", f"{TAG_PREFIX}*") or ""
    versions = [t[len(TAG_PREFIX):] for t in listed.splitlines() if parse_version(t[len(TAG_PREFIX):])]
    return sorted(versions, key=lambda v: parse_version(v) or (0, 0, 0))


def released_commit(repo: Path, version: str) -> str | None:
    """The repository commit the release of version was made from (its release commit's
    source trailer; for a tag made by hand, the commit it points at)."""
    tag = release_tag(version)
    trailer = git_answer(repo, "log", "-1", f"--format=%(trailers:key={SOURCE_TRAILER},valueonly)", f"{tag}^{{commit}}")
    if trailer:
        return trailer.splitlines()[0].strip()
    return git_answer(repo, "rev-parse", f"{tag}^{{commit}}")


def next_patch(version: str) -> str:
    major, minor, patch = parse_version(version) or (0, 0, 0)
    return f"{major}.{minor}.{patch + 1}"


def auto_version(repo: Path) -> tuple[str, str]:
    """(version, why) when none is given: see the module's docstring."""
    versions = release_versions(repo)
    if not versions:
        return FIRST_VERSION, f"no {TAG_PREFIX}* tag yet: first release"
    last = versions[-1]
    head = git_answer(repo, "rev-parse", "HEAD")
    if head and released_commit(repo, last) == head:
        return last, f"{release_tag(last)} already released HEAD {head[:12]}"
    return next_patch(last), f"next patch after {release_tag(last)}"
