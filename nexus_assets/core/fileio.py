"""Writes that never leave a half-written report: write beside, then rename into place."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """An OSError that names no file (write() and fsync() on a full disk name none) raised again
    naming path, so that `no space left on device: PATH` can say where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with naming(path), os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: object) -> None:
    """Pretty, sorted, newline-terminated JSON, written atomically."""
    write_atomic(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    """A report an upstream asset wrote (always UTF-8); its shape is the writer's schema."""
    return json.loads(path.read_text(encoding="utf-8"))


def mirror_tree(src: Path, dst: Path, ignored: frozenset[str] = frozenset()) -> int:
    """Make dst hold exactly src's files (links copied as links, never followed), copying only
    what changed and removing what src no longer has. Returns the number of files written or
    removed. Used to refresh one service's build context from the repository."""
    import filecmp
    import shutil

    changed = 0
    wanted: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in ignored)
        links = [d for d in dirnames if (here / d).is_symlink()]
        for name in sorted(filenames) + links:
            if name in ignored:
                continue
            source = here / name
            if not source.is_symlink() and not source.is_file():
                continue  # a named pipe, socket or device: never copied (workspace.sync says so)
            rel = source.relative_to(src)
            wanted.add(rel.as_posix())
            target = dst / rel
            if source.is_symlink():
                if target.is_symlink() and os.readlink(target) == os.readlink(source):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.is_file():
                    target.unlink()
                os.symlink(os.readlink(source), target)
            elif target.is_file() and not target.is_symlink() and filecmp.cmp(source, target, shallow=False):
                continue
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink():
                    target.unlink()
                shutil.copy2(source, target)
            changed += 1
    if dst.is_dir():
        for dirpath, dirnames, filenames in os.walk(dst, topdown=False):
            here = Path(dirpath)
            if ignored & set(here.relative_to(dst).parts):
                continue  # an ignored folder (.git, node_modules) is left whole, empty folders too
            for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
                rel = (here / name).relative_to(dst)
                if rel.parts[0] in ignored or name in ignored or rel.as_posix() in wanted:
                    continue
                (here / name).unlink()
                changed += 1
            if here != dst and not any(here.iterdir()):
                here.rmdir()
    return changed
