"""The target repository's git state."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dagster as dg


class GitRepo(dg.ConfigurableResource):
    """The target repository's git state, for OCI revision labels and lineage."""

    path: str

    def revision(self) -> str | None:
        """HEAD's commit of the checkout the repository is in (it may be a subfolder of one);
        None when it is not in git or git is missing."""
        try:
            done = subprocess.run(
                ["git", "-c", f"safe.directory={Path(self.path).resolve()}", "-C", self.path, "rev-parse", "HEAD"],
                capture_output=True, text=True, timeout=20, check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None
