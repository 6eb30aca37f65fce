"""The release in the target repository's git: a release commit, the annotated tag
`verified_release_vX.Y.Z` on it, and the branch `verified_release` moved to it.

The release commit is the released source commit plus `releases/vX.Y.Z/` (the manifest, the
notes and the SBOM component lists), made with git's plumbing in a private index: the
repository's working tree, index and HEAD are never touched. Its parents are the source commit
and the previous tip of `verified_release`, so the branch only ever moves forward and holds
every release; the next release reads the previous one's manifest from its tag."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.core.errors import NexusError
from nexus_assets.core.git import GitError, git, git_answer, run_git
from nexus_assets.core.masking import mask_secrets
from nexus_assets.core.release_version import (
    RELEASE_BRANCH,
    SOURCE_TRAILER,
    parse_version,
    release_tag,
    release_versions,
    released_commit,
)

RELEASE_GIT_TIMEOUT = 120.0  # a push to a remote may take longer than a question
# Secrets a release step may hold in its environment; never in a message.
TOKEN_VARIABLES = ("GITHUB_TOKEN", "REGISTRY_PASSWORD", "DOCKER_REGISTRY_TOKEN")


def scrub(text: str) -> str:
    """text without the tokens of the environment, credentials in a URL or a bearer token."""
    return mask_secrets(text, [v for v in (os.environ.get(k) for k in TOKEN_VARIABLES) if v])


class ReleaseError(NexusError):
    """The release cannot be made as asked; names the tag, commit or remote."""


@dataclass(frozen=True)
class GitState:
    head: str | None  # None: no commit yet
    dirty: bool


def _identity_env(repo: Path) -> dict[str, str]:
    """What git's environment needs for the release commit and tag: an identity when neither the
    repository nor the environment configures one (a CI checkout often has none)."""
    env: dict[str, str] = {}
    if not git_answer(repo, "config", "user.name"):
        env.update({k: os.environ.get(k) or "nexus-agent" for k in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")})
    if not git_answer(repo, "config", "user.email"):
        env.update({k: os.environ.get(k) or "nexus-agent@localhost" for k in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")})
    return env


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    try:
        return git(repo, *args, env=env, data=data, timeout=RELEASE_GIT_TIMEOUT)
    except GitError as exc:
        raise ReleaseError(scrub(str(exc))) from None


def state(repo: Path) -> GitState:
    status = git_answer(repo, "status", "--porcelain", "--untracked-files=no")
    return GitState(head=git_answer(repo, "rev-parse", "--verify", "-q", "HEAD"), dirty=bool(status))


def tag_exists(repo: Path, version: str) -> bool:
    return git_answer(repo, "rev-parse", "--verify", "-q", f"refs/tags/{release_tag(version)}") is not None


def previous_version(repo: Path, version: str) -> str | None:
    """The newest released version older than version, by the tags."""
    wanted = parse_version(version) or (0, 0, 0)
    older = [v for v in release_versions(repo) if (parse_version(v) or (0, 0, 0)) < wanted]
    return older[-1] if older else None


def read_released(repo: Path, version: str, name: str) -> bytes | None:
    """releases/vX.Y.Z/<name> as the release commit of version holds it."""
    try:
        return run_git(repo, "show", f"{release_tag(version)}:releases/v{version}/{name}")
    except GitError:
        return None


def release_commit(repo: Path, version: str, source: str, files: dict[str, bytes], summary: str) -> str:
    """A commit holding source's tree plus releases/v<version>/<name> for every file, parented on
    source and the current tip of verified_release; returns its id."""
    env = _identity_env(repo)
    with tempfile.TemporaryDirectory(prefix="nexus-release-index-") as tmp:
        env["GIT_INDEX_FILE"] = str(Path(tmp) / "index")  # a private index: the repository's stays as it is
        _git(repo, "read-tree", source, env=env)
        for name, data in sorted(files.items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", env=env, data=data)
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},releases/v{version}/{name}", env=env)
        tree = _git(repo, "write-tree", env=env)
    parents = [source]
    tip = git_answer(repo, "rev-parse", "--verify", "-q", f"refs/heads/{RELEASE_BRANCH}")
    if tip and tip != source:
        parents.append(tip)
    message = f"Verified release {version}\n\n{summary}\n\n{SOURCE_TRAILER}: {source}\n"
    args = [arg for parent in parents for arg in ("-p", parent)]
    return _git(repo, "commit-tree", tree, *args, env=env, data=message.encode("utf-8"))


def tag_release(repo: Path, version: str, commit: str, message: str) -> str:
    """The annotated tag verified_release_v<version> on commit; returns the tag's name."""
    tag = release_tag(version)
    _git(repo, "tag", "-a", tag, commit, "-F", "-", env=_identity_env(repo), data=message.encode("utf-8"))
    return tag


def move_branch(repo: Path, commit: str) -> str:
    """Point verified_release at commit (created if missing). A branch checked out in the
    repository is left alone (moving it would change that working tree's files): says so."""
    ref = f"refs/heads/{RELEASE_BRANCH}"
    if git_answer(repo, "symbolic-ref", "-q", "HEAD") == ref:
        return f"branch {RELEASE_BRANCH} is checked out in {repo}: not moved (check out another branch)"
    old = git_answer(repo, "rev-parse", "--verify", "-q", ref)
    _git(repo, "update-ref", "-m", "nexus-agent: verified release", ref, commit, *([old] if old else []))
    return f"branch {RELEASE_BRANCH} {'moved from ' + old[:12] + ' to' if old else 'created at'} {commit[:12]}"


def push_release(repo: Path, remote: str, version: str) -> str:
    """Push the branch and the tag to remote (NEXUS_RELEASE_PUSH); a remote that already has
    them is fine. git's message is masked: a remote URL may carry credentials."""
    tag = release_tag(version)
    _git(repo, "push", "--porcelain", remote, f"refs/heads/{RELEASE_BRANCH}:refs/heads/{RELEASE_BRANCH}",
         f"refs/tags/{tag}:refs/tags/{tag}")
    return f"pushed {RELEASE_BRANCH} and {tag} to {remote}"


def check_tag_reuse(repo: Path, version: str, head: str | None) -> str | None:
    """None when the tag of version does not exist; a message when it exists for head (the same
    release again: no new tag). A tag made from another commit is a ReleaseError."""
    if not tag_exists(repo, version):
        return None
    source = released_commit(repo, version)
    if source != head:
        raise ReleaseError(
            f"{release_tag(version)} already exists for commit {(source or '?')[:12]} but {repo} is at "
            f"{(head or 'no commit')[:12]}: give another --version, or leave it out for the next patch")
    return f"{release_tag(version)} already exists for commit {(head or '')[:12]}: no new tag made"
