"""Step A: the working copy. The pipeline never writes into the target repository; it syncs
the repository into the workdir and works there, so the source stays pristine.

The sync is incremental: files are copied only when their content changed, files removed
from the repository are removed from the copy, and what the pipeline made itself (reports,
artifacts, scaffolded services, Dagster's storage) is left alone, until the repository gets a
service of a scaffold's name: then the scaffold is removed whole, so the working copy's folder
holds the repository's files only and later reports see the real service."""

from __future__ import annotations

import contextlib
import errno
import filecmp
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.core.errors import TargetRepoError
from nexus_assets.core.fileio import write_json
from nexus_assets.core.hashing import IGNORED_NAMES, special_kind
from nexus_assets.core.settings import WORKDIR_GENERATED, WORKSPACE_STATE
from nexus_assets.core.textfiles import inside
from nexus_assets.target.services import SCAFFOLD_MARKER, find_services


@dataclass(frozen=True)
class SyncResult:
    files: int
    copied: int
    removed: int
    # Scaffolded services removed because the repository now has a service of that name.
    retired: tuple[str, ...] = ()
    # Named pipes, sockets and devices: never copied (reading a pipe blocks for ever), each
    # named with its kind so the step says which and why.
    skipped: tuple[str, ...] = ()


def _repo_files(repo: Path, workdir: Path) -> list[str]:
    """Relative paths of the repository's files and links (a link to a folder is one entry:
    it is mirrored as a link, never followed)."""
    files = []
    skip = {workdir.resolve()}
    for dirpath, dirnames, filenames in os.walk(repo):
        here = Path(dirpath)
        linked = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES and d not in linked
                             and (here / d).resolve() not in skip)
        for name in sorted(filenames + [d for d in linked if d not in IGNORED_NAMES]):
            files.append((here / name).relative_to(repo).as_posix())
    return sorted(files)


def _link_text(repo: Path, rel: str) -> str:
    """What the working copy's link at rel points to. A link that stays inside the repository
    points to the same place inside the working copy (written relative, so an absolute one
    does not lead back into the repository); any other is kept as written, so discovery finds
    it there and reports it, and every reader refuses what resolves outside."""
    src = repo / rel
    if not inside(repo, src):
        return os.readlink(src)
    in_repo = os.path.relpath(src.resolve(), repo.resolve())
    return os.path.relpath(in_repo, os.path.dirname(rel) or ".")


def _clear_linked_parents(workdir: Path, rel: str, checked: set[str]) -> None:
    """Remove working-copy links standing where the repository now has a real folder, so a
    write to rel can never go through a link to somewhere else."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in checked:
            continue
        checked.add(prefix)
        if (workdir / prefix).is_symlink():
            (workdir / prefix).unlink()


def _copy_whole(src: Path, dst: Path) -> None:
    """Copy beside dst, then rename: a copy cut short (a full disk) leaves no half file behind."""
    part = dst.with_name(f".{dst.name}.nexus-part")
    try:
        shutil.copy2(src, part)
        os.replace(part, dst)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # name the file, not the part
            raise OSError(errno.ENOSPC, exc.strerror, str(dst)) from None
        raise


def _retire_scaffolds(repo: Path, workdir: Path, files: list[str], compose_file: str | None) -> tuple[str, ...]:
    """Remove every scaffolded services/<name>/ of the working copy (it holds SCAFFOLD_MARKER) whose
    real service has arrived: the repository has files at services/<name>, or a service of that
    name (a compose service that builds from another folder). Removed whole, marker and template
    files included, so the next copy leaves the repository's files only."""
    services = workdir / "services"
    scaffolds = sorted(d.name for d in services.iterdir() if not d.is_symlink() and d.is_dir()
                       and (d / SCAFFOLD_MARKER).is_file()) if services.is_dir() else []
    if not scaffolds:
        return ()
    in_repo = {rel.split("/")[1] for rel in files if rel.startswith("services/") and rel.count("/") >= 1}
    with contextlib.suppress(TargetRepoError):  # no services/ folder: only the paths above count
        in_repo |= {s.name for s in find_services(repo, compose_file)}
    retired = tuple(name for name in scaffolds if name in in_repo)
    for name in retired:
        shutil.rmtree(services / name)
    return retired


def sync_workspace(repo: Path, workdir: Path, compose_file: str | None = None) -> SyncResult:
    """Make workdir hold the repository's files, copying only what changed. compose_file is the
    stack compose file (NEXUS_COMPOSE_FILE), whose service names retire scaffolds too."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("reports", "artifacts", "output"):
        (workdir / name).mkdir(exist_ok=True)
    state_path = workdir / WORKSPACE_STATE
    previous: set[str] = set()
    if state_path.is_file():
        try:
            previous = set(json.loads(state_path.read_text())["files"])
        except (ValueError, KeyError):
            previous = set()
    files = _repo_files(repo, workdir)
    retired = _retire_scaffolds(repo, workdir, files, compose_file)
    copied = 0
    skipped: list[str] = []
    checked: set[str] = set()
    for rel in files:
        src, dst = repo / rel, workdir / rel
        _clear_linked_parents(workdir, rel, checked)
        if src.is_symlink():
            link_to = _link_text(repo, rel)
            if dst.is_symlink() and os.readlink(dst) == link_to:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)  # was a folder, is a link now
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            os.symlink(link_to, dst)
            copied += 1
            continue
        kind = special_kind(src)
        if kind is not None:
            skipped.append(f"{rel} ({kind})")
            continue
        if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink():
            dst.unlink()
        _copy_whole(src, dst)
        copied += 1
    removed = 0
    for rel in sorted(previous - set(files)):
        target = workdir / rel
        if rel.split("/")[0] in WORKDIR_GENERATED or not inside(workdir, target.parent):
            continue  # never delete through a link (the folder became a link, or was removed)
        if target.is_file() or target.is_symlink():
            target.unlink()
            removed += 1
            # Leave no empty folder behind: an empty services/<name>/ would look like a service.
            parent = target.parent
            while parent != workdir and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    write_json(state_path, {"repo": str(repo), "files": files})
    return SyncResult(files=len(files), copied=copied, removed=removed, retired=retired, skipped=tuple(skipped))
