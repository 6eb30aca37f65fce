"""One small exception family: every message names the file, line, service or host
that is wrong and what to do, and never a secret value."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable


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


class RegistryError(NexusError):
    """The image registry could not be reached or refused a push; names the registry."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (never retried; the message holds no secret)."""


class ReportError(NexusError):
    """A report the pipeline produced does not match its model (schemas/); names the report
    and the field."""


def _subclasses(cls: type[Exception]) -> set[str]:
    names = {cls.__name__}
    for sub in cls.__subclasses__():
        names |= _subclasses(sub)
    return names


def our_error_names() -> set[str]:
    """The class names of every error nexus-assets raises on purpose, stage modules' subclasses
    included once imported (a serialized error knows only its class name)."""
    return _subclasses(NexusError)


# A full disk shows up as OSError(ENOSPC) from our own writes, or as SQLite's "database or disk
# is full" from Dagster's storage: both become one line naming the path. A failed write() names
# no file: then the line names the first of the candidate folders whose filesystem is full.
# shutil's copies say "'source' -> 'destination'": the destination is the full one.
_ENOSPC_TEXT = re.compile(r"\[Errno 28\][^:\n]*(?::\s*'([^'\n]*)'(?:\s*->\s*'([^'\n]*)')?)?")
_SQLITE_FULL = "database or disk is full"


def _full_one(candidates: Iterable[object]) -> str | None:
    folders = [str(c) for c in candidates if c]
    for folder in folders:
        probe = folder
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        try:
            stats = os.statvfs(probe or "/")
        except OSError:
            continue
        if stats.f_bavail * stats.f_frsize < 1 << 20:
            return folder
    return folders[0] if folders else None


def no_space_line(error: BaseException | str, candidates: Iterable[object] = ()) -> str | None:
    """'no space left on device: PATH' when error (an exception with its causes, or the text of
    one) says the disk is full; None otherwise."""
    if isinstance(error, str):
        match = _ENOSPC_TEXT.search(error)
        if match:
            path = match.group(2) or match.group(1) or _full_one(candidates) or "(path not given)"
            return f"no space left on device: {path}"
        if _SQLITE_FULL in error:
            return f"no space left on device: {_full_one(candidates) or 'the Dagster storage'} ({_SQLITE_FULL})"
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            path = current.filename2 or current.filename or _full_one(candidates) or "(path not given)"
            return f"no space left on device: {path}"
        if _SQLITE_FULL in str(current):
            return f"no space left on device: {_full_one(candidates) or 'the Dagster storage'} ({_SQLITE_FULL})"
        current = current.__cause__ or current.__context__
    return None
