"""The bundled sample as a git checkout of its own: the embedded default target.

A release is a branch and an annotated tag in the target's git (release/gitrelease.py). The
sample ships inside nexus-assets' own package, which is no checkout of its own (and must never
get release tags), so a run on the default target uses a copy of it beside the working copy,
`WORKDIR-sample-repo/`, made a git repository with one commit per version of the bundled sample.
The commit is deterministic (fixed author, committer and dates), so the same sample gives the
same revision, OCI labels and release commit on every machine. Its `.env` stays out of git
(`.git/info/exclude`), as in a real checkout.

The copy is refreshed only when the bundled sample itself changed (a new nexus-assets): the
sample's tree hash is kept in `.git/nexus-sample-tree`. Edits made in the copy are kept until
then, and release tags are kept always."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.fileio import mirror_tree
from nexus_assets.core.git import GitError, git
from nexus_assets.core.hashing import IGNORED_NAMES, tree_hash

SAMPLE_REPO = Path(__file__).parent.parent / "sample_repo"
STAMP = "nexus-sample-tree"
# A fixed identity and date: the same sample is the same commit everywhere.
COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "nexus-assets", "GIT_AUTHOR_EMAIL": "nexus-assets@localhost",
    "GIT_COMMITTER_NAME": "nexus-assets", "GIT_COMMITTER_EMAIL": "nexus-assets@localhost",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def sample_checkout_path(workdir: Path) -> Path:
    return workdir.parent / f"{workdir.name}-sample-repo"


def _git(repo: Path, *args: str) -> str:
    try:
        return git(repo, *args, env=COMMIT_ENV, timeout=120)
    except GitError as exc:
        raise ConfigError(f"cannot make the sample checkout {repo}: {exc}") from None


def sample_checkout(workdir: Path) -> Path:
    """The sample's checkout for this working copy, made or refreshed when the bundled sample
    changed; two runs at once make it once (an flock beside it). Where it cannot be made (no git,
    as in the code-location image; a read-only place), the bundled sample itself, whose release
    is then the local folder only (the release step says so)."""
    if shutil.which("git") is None:
        return SAMPLE_REPO
    try:
        return _made(workdir)
    except (OSError, ConfigError):
        return SAMPLE_REPO


def _made(workdir: Path) -> Path:
    target = sample_checkout_path(workdir)
    wanted = tree_hash(SAMPLE_REPO)
    stamp = target / ".git" / STAMP
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return target  # the usual case: one hash of the bundled sample, no git call
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == wanted:
            return target
        if not (target / ".git").is_dir():
            target.mkdir(parents=True, exist_ok=True)
            _git(target, "init", "-q", "-b", "main")
            (target / ".git" / "info").mkdir(exist_ok=True)
            (target / ".git" / "info" / "exclude").write_text(".env\n")
        mirror_tree(SAMPLE_REPO, target, IGNORED_NAMES)
        _git(target, "add", "-A")
        if _git(target, "status", "--porcelain"):
            _git(target, "commit", "-q", "--no-verify", "-m", f"Nexus COS sample monorepo ({wanted[:12]}), as bundled "
                 "with nexus-assets")
        stamp.write_text(wanted + "\n")
    return target
