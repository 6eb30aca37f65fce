"""The target repository's git state."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from nexus_assets.core.git import git_answer


def _git(path: str, *args: str) -> str | None:
    """git's non-empty answer in path (which may be a subfolder of a checkout), or None."""
    return git_answer(path, *args) or None


def public_url(url: str) -> str | None:
    """A remote URL without the user name or token some clones carry (https://user:token@host/...);
    None for a local path (a clone of a clone), which says nothing to an auditor elsewhere."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file") and not _SCP_LIKE.match(url):
        return None
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git


class GitRepo(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """The target repository's git state, for the OCI labels, the manifest and lineage. A
    repository that is a folder of a larger checkout has that checkout's commit."""

    path: str

    def revision(self) -> str | None:
        """HEAD's commit of the checkout the repository is in (it may be a subfolder of one);
        None when it is not in git or git is missing."""
        return _git(self.path, "rev-parse", "HEAD")

    def remote_url(self) -> str | None:
        """The `origin` remote's URL without credentials, or None when there is none (or it is a
        local path)."""
        url = _git(self.path, "remote", "get-url", "origin")
        return public_url(url) if url else None

    def commit_time(self) -> str | None:
        """HEAD's commit time in UTC (RFC 3339, `Z`), or None when the target is not in git."""
        stamp = _git(self.path, "show", "-s", "--format=%ct", "HEAD")
        if not stamp:
            return None
        return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
