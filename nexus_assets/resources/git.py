"""The target repository's git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg


class GitRepo(dg.ConfigurableResource):
    """The target repository's git state, for OCI revision labels and lineage."""

    path: str

    def revision(self) -> str | None:
        if not (Path(self.path) / ".git").exists():
            return None
        done = subprocess.run(["git", "-C", self.path, "rev-parse", "HEAD"], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None
