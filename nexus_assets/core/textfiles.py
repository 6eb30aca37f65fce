"""Reading a target repository's text files: bounded, never crashing on bad bytes, and the one
shape of a reported problem (file, line, service, message).

Shared by `discovery` (Dockerfiles, compose files, the service list) and `target.secrets`
(`.env*` files), so neither has to import the other.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError

# Folders that never hold the repository's own compose or env files.
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".pytest_cache",
                       ".mypy_cache", ".tox", "nexus-discovery"})
OUTPUT_DIRS = frozenset({"reports", "artifacts", "output"})
MAX_TEXT_BYTES = 4 * 1024 * 1024


def inside(root: Path, path: Path, *, resolved_root: Path | None = None) -> bool:
    """True when path, with every link resolved, stays under root. resolved_root: root.resolve(),
    from a caller that asks about many paths (each resolve is a walk of lstat calls)."""
    try:
        path.resolve().relative_to(resolved_root or root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or InputError naming it when it is larger than max_bytes. A named pipe,
    socket or device is an OSError (reading a pipe would block for ever)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{path}: larger than {max_bytes} bytes; not read")
    return data


def problem(file: str | None, line: int | None, message: str, service: str | None = None) -> dict[str, Any]:
    """One problem record; every problem list in discovery's output has this shape."""
    return {"file": file, "line": line, "service": service, "message": message}


def decode_text(data: bytes, shown: str, service: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """data as text; non-UTF-8 bytes are replaced and reported with the line of the first one."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return data.decode("utf-8", errors="replace"), [problem(
            shown, line, f"not UTF-8 (first bad byte at line {line}); read with replacement characters, "
                         "save it as UTF-8", service)]



def read_text(path: Path, shown: str, service: str | None = None) -> tuple[str | None, list[dict[str, Any]]]:
    """A text file's content; non-UTF-8 bytes are replaced and reported with the line of the
    first bad byte, so one Latin-1 file never stops discovery. None when unreadable or huge."""
    try:
        data = read_bounded(path, MAX_TEXT_BYTES)
    except InputError:
        return None, [problem(shown, None, f"larger than {MAX_TEXT_BYTES} bytes; not read", service)]
    except OSError as exc:
        return None, [problem(shown, None, f"cannot read: {exc.strerror}", service)]
    return decode_text(data, shown, service)


def rel_path(path: Path, repo: Path) -> str:
    """path relative to repo in POSIX form, or path as given when it is outside repo."""
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:
        return str(path)


def walk_files(repo: Path, match: re.Pattern[str]) -> list[Path]:
    """Files under repo whose name matches, sorted by relative path; SKIP_DIRS are never
    entered, nor the pipeline's own output folders at the top of repo."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(repo):
        # The pipeline's own outputs live in reports/, artifacts/ and output/ of a working copy.
        top = OUTPUT_DIRS if Path(dirpath) == repo else frozenset()
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and d not in top)
        found.extend(Path(dirpath) / f for f in filenames if match.match(f))
    return sorted(found, key=lambda p: p.relative_to(repo).as_posix())
