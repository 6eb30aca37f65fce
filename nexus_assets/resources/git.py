"""The target repository's git state."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg


def _git(path: str, *args: str) -> str | None:
    done = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def public_url(url: str) -> str:
    """A remote URL without the user name or token some clones carry (https://user:token@host/...)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


class GitRepo(dg.ConfigurableResource):
    """The target repository's git state, for the OCI labels, the manifest and lineage. Only a
    checkout's root counts: a folder inside another project's checkout is not one."""

    path: str

    def _checkout(self) -> bool:
        return (Path(self.path) / ".git").exists()

    def revision(self) -> str | None:
        """The commit checked out (HEAD), or None when the target is not a git checkout."""
        return _git(self.path, "rev-parse", "HEAD") if self._checkout() else None

    def remote_url(self) -> str | None:
        """The `origin` remote's URL without credentials, or None when there is none."""
        url = _git(self.path, "remote", "get-url", "origin") if self._checkout() else None
        return public_url(url) if url else None

    def commit_time(self) -> str | None:
        """HEAD's commit time in UTC (RFC 3339, `Z`), or None when the target is not a git checkout."""
        stamp = _git(self.path, "show", "-s", "--format=%ct", "HEAD") if self._checkout() else None
        if not stamp:
            return None
        return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
