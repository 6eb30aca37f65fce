"""Opening a discovery archive (a `.tar.gz` or a folder) without trusting it.

The archive comes from a VPS someone else ran commands on. `tarfile`'s own `data` filter decides
whether a member is safe (no absolute path, nothing outside the destination, no link pointing
out, no device or FIFO): over every member before anything is written, then again while
extracting into a staging folder that replaces the destination only when every member went
through (a link that escapes through another link of the archive is seen only then). Ours are
only the bounds (member count and sizes) and one rule: no member is written through a link.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from nexus_assets.core.errors import InputError
from nexus_assets.core.textfiles import inside

DEFAULT_MAX_MEMBER_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000


def _parts(name: str) -> list[str]:
    """A member name's path components as tar and Linux read it (a backslash is a character)."""
    return [p for p in name.split("/") if p not in ("", ".")]


def _refused(archive: Path, member: tarfile.TarInfo, why: str) -> InputError:
    return InputError(f"{archive}: member {member.name!r} {why}; archive refused, nothing extracted")


def _filter_refusal(archive: Path, member: tarfile.TarInfo, exc: tarfile.FilterError, *,
                    on_disk: bool) -> InputError:
    """The data filter's verdict as a message naming the archive and the member. on_disk: the
    filter refused it during extraction, i.e. only because of a link the archive made earlier."""
    if on_disk:
        what = ("is a link whose target goes through another link of the archive and leaves it"
                if isinstance(exc, tarfile.LinkOutsideDestinationError)
                else "would be written through another link of the archive, outside it")
        return _refused(archive, member, f"{what} ({member.linkname or member.name!r}, tarfile data filter)")
    if isinstance(exc, tarfile.AbsolutePathError):
        return _refused(archive, member, "has an absolute path")
    if isinstance(exc, tarfile.OutsideDestinationError):
        where = "contains '..' (path traversal)" if ".." in _parts(member.name) else "is outside the archive"
        return _refused(archive, member, f"{where}: it would be written outside the destination")
    if isinstance(exc, tarfile.AbsoluteLinkError):
        return _refused(archive, member, f"is a link to the absolute path {member.linkname!r}")
    if isinstance(exc, tarfile.LinkOutsideDestinationError):
        return _refused(archive, member, f"is a link pointing outside the archive ({member.linkname!r})")
    if isinstance(exc, tarfile.SpecialFileError):
        return _refused(archive, member, "is a device or FIFO")
    return _refused(archive, member, f"is refused by tarfile's data filter ({type(exc).__name__})")


def _check_member(archive: Path, member: tarfile.TarInfo, dest: Path, links: set[str]) -> str | None:
    """The member's normalized name (None for the archive root) once tarfile's data filter
    passes it; InputError naming the member otherwise."""
    try:
        kept = tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise _filter_refusal(archive, member, exc, on_disk=False) from exc
    if kept.name != member.name:  # the filter strips a leading `/`: we refuse the member instead
        raise _refused(archive, member, "has an absolute path")
    parts = _parts(member.name)
    if not parts:
        return None
    through = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links), None)
    if through is not None:
        # Safe for the filter (it stays inside), but the member would not be where its name says.
        raise _refused(archive, member, f"would be written through the link {through!r}")
    if member.issym():
        links.add("/".join(parts))
    return "/".join(parts)


def _bounded(archive: Path, member: tarfile.TarInfo, count: int, total: int, *, max_members: int,
             max_member_bytes: int, max_total_bytes: int) -> int:
    """total plus this member's size, or InputError when a bound of ours is passed."""
    if count >= max_members:
        raise InputError(f"{archive}: more than {max_members} members (at {member.name!r}); "
                         "archive refused, nothing extracted")
    if not member.isreg():
        return total
    if member.size > max_member_bytes:
        raise InputError(f"{archive}: member {member.name!r} is {member.size} bytes, over the "
                         f"{max_member_bytes}-byte limit; archive refused, nothing extracted")
    if total + member.size > max_total_bytes:
        raise InputError(f"{archive}: members add up to more than {max_total_bytes} bytes "
                         f"(at {member.name!r}); archive refused, nothing extracted")
    return total + member.size


def extract_tar_safely(
    archive: Path,
    dest: Path,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Extract a (possibly compressed) tar archive into dest and return the member names, sorted.

    Raises InputError naming the archive and the offending member when tarfile's data filter
    refuses a member (absolute path, outside dest, a link pointing out, a device or FIFO), when
    a member would be written through a link of the archive, or when a bound is passed; and
    naming the archive when it is not a readable tar file. Nothing is written to dest unless
    every member passes."""
    dest.mkdir(parents=True, exist_ok=True)
    links: set[str] = set()
    checked: list[tarfile.TarInfo] = []
    names: list[str] = []
    total = 0
    staging: Path | None = None
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                total = _bounded(archive, member, len(checked), total, max_members=max_members,
                                 max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes)
                rel = _check_member(archive, member, dest, links)
                checked.append(member)
                if rel is not None:
                    names.append(rel)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
            try:
                tf.extractall(staging, members=checked, filter="data")
            except tarfile.FilterError as exc:
                raise _filter_refusal(archive, exc.tarinfo, exc, on_disk=True) from exc
        for entry in sorted(staging.iterdir()):
            os.replace(entry, dest / entry.name)
    except InputError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, KeyError) as exc:
        raise InputError(f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc}); "
                         "recreate it with `tar -czf`") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(set(names))


def find_member(root: Path, name: str, *, max_depth: int = 2) -> Path | None:
    """The file called name under root (an archive often has one top folder), shallowest and
    then alphabetically first, or None. Raises InputError when the only candidate is a link
    out of root or not a regular file (a FIFO would block the reader)."""
    found: list[Path] = []
    level = [root]
    for _ in range(max_depth):
        hits = sorted(p / name for p in level if (p / name).exists() or (p / name).is_symlink())
        if hits:
            found = hits
            break
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and not c.is_symlink())
    for path in found:
        if not inside(root, path):
            raise InputError(f"{root}: {path.relative_to(root)} is a link pointing outside the archive; "
                             "ignored")
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{root}: {path.relative_to(root)} is not a regular file; ignored")
        return path
    return None


@contextlib.contextmanager
def open_archive(path: Path, **limits: int) -> Iterator[tuple[Path, str, list[str]]]:
    """Yield (folder, kind, members) for a discovery archive: a folder is used in place
    (kind "folder"); a tarball is extracted safely into a temporary folder removed afterwards
    (kind "tar"). Raises InputError for a broken or unsafe archive."""
    if path.is_dir():
        members = []
        for dirpath, dirnames, filenames in os.walk(path):  # never follows links out of the folder
            dirnames.sort()
            members += [(Path(dirpath) / f).relative_to(path).as_posix() for f in filenames]
            if len(members) > DEFAULT_MAX_MEMBERS:
                raise InputError(f"{path}: more than {DEFAULT_MAX_MEMBERS} files; not a discovery archive")
        yield path, "folder", sorted(members)
        return
    if not path.is_file():
        raise InputError(f"{path}: discovery archive not found")
    with tempfile.TemporaryDirectory(prefix="nexus-discovery-") as tmp:
        members = extract_tar_safely(path, Path(tmp), **limits)
        yield Path(tmp), "tar", members

