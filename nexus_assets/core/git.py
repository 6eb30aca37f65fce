"""The one way nexus-assets runs git, whatever it asks: the target's state, its release tags, the
release commit, the sample checkout, the committed files, a waiver's author.

Every call has a timeout, reads a checkout owned by another user (`-c safe.directory=`), never
prompts for credentials (GIT_TERMINAL_PROMPT=0), never starts a pager and speaks C-locale English.
A failure is a GitError naming the command and the repository; credentials a remote URL or an
error carries are masked. `tests/core/test_git.py` fails when another module calls git itself.

It lives in core, not beside the GitRepo resource (resources/git.py), because core modules ask
git too (the sample checkout made for the default settings, the release tags) and resources/
imports core: the resource is built on this runner."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from nexus_assets.core.errors import NexusError
from nexus_assets.core.masking import mask_secrets

TIMEOUT = 60.0  # seconds; a question git cannot answer in a minute (a hung remote, a lock) fails
_FIXED_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}


class GitError(NexusError):
    """git failed, was missing, or took longer than its timeout; names the command and repository."""


def _shown(args: tuple[str, ...]) -> str:
    return "git " + " ".join(a for a in args[:3] if "\n" not in a)


def run_git(repo: Path | str, *args: str, timeout: float = TIMEOUT, env: Mapping[str, str] | None = None,
            data: bytes | None = None) -> bytes:
    """stdout of `git ARGS` run in repo (which may be a folder inside a checkout), as bytes.
    env adds to (or overrides) the environment (an identity, a private index); data is stdin."""
    where = Path(repo)
    command = ["git", "--no-pager", "-c", f"safe.directory={where.resolve()}", "-C", str(where), *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout, check=False,
                              env={**os.environ, **(env or {}), **_FIXED_ENV})
    except subprocess.TimeoutExpired:
        raise GitError(f"`{_shown(args)}` in {where} did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise GitError(f"`{_shown(args)}` in {where} could not start: {exc.strerror or exc} (is git installed?)") from None
    if done.returncode != 0:
        error = mask_secrets(done.stderr.decode("utf-8", "replace").strip(), ())
        raise GitError(f"`{_shown(args)}` failed in {where} (exit {done.returncode}): {error}")
    return done.stdout


def git(repo: Path | str, *args: str, timeout: float = TIMEOUT, env: Mapping[str, str] | None = None,
        data: bytes | None = None) -> str:
    """stdout of `git ARGS` in repo as text, stripped; a GitError when git fails."""
    return run_git(repo, *args, timeout=timeout, env=env, data=data).decode("utf-8", "replace").strip()


def git_answer(repo: Path | str, *args: str, timeout: float = TIMEOUT) -> str | None:
    """stdout of `git ARGS` in repo, stripped (possibly ""), or None when git says no: for the
    questions whose failure is an answer (not a checkout, no such tag, no remote, git missing)."""
    try:
        return git(repo, *args, timeout=timeout)
    except GitError:
        return None
