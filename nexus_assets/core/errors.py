"""One small exception family: every message names the file, line, service or host
that is wrong and what to do, and never a secret value."""

from __future__ import annotations

import errno
import re


class NexusError(Exception):
    """Base of every error nexus-assets raises on purpose."""


class ConfigError(NexusError):
    """Bad flags, environment or configuration."""


class TargetRepoError(NexusError):
    """The target repository is missing or not shaped like a Nexus COS monorepo."""


class InputError(NexusError):
    """A file in the target repository cannot be used; names the file and line."""


class EngineError(NexusError):
    """The Docker engine is unreachable or refused an operation."""


class BuildError(NexusError):
    """One service's image could not be built; names the service."""


class ReportError(NexusError):
    """A report the pipeline produced does not match its model (schemas/); names the report
    and the field."""


# A full disk shows up as OSError(ENOSPC) from our own writes, or as SQLite's "database or disk
# is full" from Dagster's storage: both become one line naming the path.
_ENOSPC_TEXT = re.compile(r"\[Errno 28\][^:\n]*(?::\s*'([^'\n]*)')?")
_SQLITE_FULL = "database or disk is full"


def no_space_line(error: BaseException | str, fallback_path: object = None) -> str | None:
    """'no space left on device: PATH' when error (an exception with its causes, or the text of
    one) says the disk is full; None otherwise."""
    if isinstance(error, str):
        match = _ENOSPC_TEXT.search(error)
        if match:
            return f"no space left on device: {match.group(1) or fallback_path or '(path not given)'}"
        if _SQLITE_FULL in error:
            return f"no space left on device: {fallback_path or 'the Dagster instance storage'} ({_SQLITE_FULL})"
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            path = current.filename or fallback_path or "(path not given)"
            return f"no space left on device: {path}"
        if _SQLITE_FULL in str(current):
            return f"no space left on device: {fallback_path or 'the Dagster instance storage'} ({_SQLITE_FULL})"
        current = current.__cause__ or current.__context__
    return None
