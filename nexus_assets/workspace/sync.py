"""Step A: the working copy. The pipeline never writes into the target repository; it syncs
the repository into the workdir and works there, so the source stays pristine.

The sync is incremental: files are copied only when their content changed, files removed
from the repository are removed from the copy, and what the pipeline made itself (reports,
artifacts, scaffolded services, Dagster's storage) is left alone."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.core.fileio import write_json
from nexus_assets.core.hashing import IGNORED_NAMES

STATE_FILE = ".nexus-workspace.json"
GENERATED = ("reports", "artifacts", "output", ".dagster_home", STATE_FILE)


@dataclass(frozen=True)
class SyncResult:
    files: int
    copied: int
    removed: int


def _repo_files(repo: Path, workdir: Path) -> list[str]:
    files = []
    skip = {workdir.resolve()}
    for dirpath, dirnames, filenames in os.walk(repo):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES and (here / d).resolve() not in skip)
        for name in sorted(filenames):
            files.append((here / name).relative_to(repo).as_posix())
    return files


def sync_workspace(repo: Path, workdir: Path) -> SyncResult:
    """Make workdir hold the repository's files, copying only what changed."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("reports", "artifacts", "output"):
        (workdir / name).mkdir(exist_ok=True)
    state_path = workdir / STATE_FILE
    previous: set[str] = set()
    if state_path.is_file():
        try:
            previous = set(json.loads(state_path.read_text())["files"])
        except (ValueError, KeyError):
            previous = set()
    files = _repo_files(repo, workdir)
    copied = 0
    for rel in files:
        src, dst = repo / rel, workdir / rel
        if src.is_symlink():
            if dst.is_symlink() and os.readlink(dst) == os.readlink(src):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            os.symlink(os.readlink(src), dst)
            copied += 1
            continue
        if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink():
            dst.unlink()
        shutil.copy2(src, dst)
        copied += 1
    removed = 0
    for rel in sorted(previous - set(files)):
        target = workdir / rel
        if rel.split("/")[0] in GENERATED:
            continue
        if target.is_file() or target.is_symlink():
            target.unlink()
            removed += 1
            # Leave no empty folder behind: an empty services/<name>/ would look like a service.
            parent = target.parent
            while parent != workdir and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    write_json(state_path, {"repo": str(repo), "files": files})
    return SyncResult(files=len(files), copied=copied, removed=removed)
