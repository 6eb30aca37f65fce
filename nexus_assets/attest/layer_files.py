"""An image's files read straight from the engine's overlay2 layer folders, when this process can
see them (an engine on this machine, run as root). The answers are the archive endpoint's
(attest.image_files reads through it otherwise), without a container and without the engine
packing every language root into a tar stream for every image: about 1 s of the engine's time
per image there, a few tens of milliseconds here.

The layers merge as overlayfs merges them: the topmost layer that holds a name wins, a whiteout
(a 0/0 character device) deletes it, and an opaque folder (trusted.overlay.opaque=y) hides what
lower layers hold under it. Symbolic links are resolved inside the image, never on the host: in
a path's folders always, in its last part as the archive endpoint does (it returns the link
itself, and the caller follows it)."""

import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_MAX_LINKS = 40  # as the kernel: more links than this in one path is a loop


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LayeredImage:
    """One image's filesystem as the engine's layer folders hold it (top layer first)."""

    def __init__(self, layers: list[Path]) -> None:
        self.layers = layers

    @classmethod
    def of(cls, info: dict[str, Any]) -> "LayeredImage | None":
        """The image an inspect answer describes, or None when its layers are not overlay2
        folders this process can read (another storage driver, a remote engine, not root)."""
        driver = info.get("GraphDriver") or {}
        if driver.get("Name") != "overlay2":
            return None
        data = driver.get("Data") or {}
        layers = [Path(p) for p in [data.get("UpperDir") or "", *(data.get("LowerDir") or "").split(":")] if p]
        if not layers or not all(os.access(p, os.R_OK | os.X_OK) and p.is_dir() for p in layers):
            return None
        return cls(layers)

    def _child(self, active: list[Path], name: str) -> tuple[Path, os.stat_result, list[Path]] | None:
        """The entry `name` in a folder that `active` layers contribute to: its topmost layer
        path, its stat, and (for a folder) the layers that contribute to it."""
        top: tuple[Path, os.stat_result] | None = None
        below: list[Path] = []
        for layer_dir in active:
            path = layer_dir / name
            st = _lstat(path)
            if st is None:
                continue
            if top is None:
                if _whiteout(st):
                    return None
                top = (path, st)
                if not stat.S_ISDIR(st.st_mode):
                    return path, st, []
            elif not stat.S_ISDIR(st.st_mode):
                break  # a file or a whiteout under the folder: nothing lower shows through
            below.append(path)
            if _opaque(path):
                break
        if top is None:
            return None
        return top[0], top[1], below

    def _root(self) -> tuple[Path, os.stat_result, list[Path]]:
        """The image's / : every layer contributes to it."""
        return self.layers[0], os.lstat(self.layers[0]), list(self.layers)

    def _lookup(self, path: str) -> tuple[Path, os.stat_result, list[Path]] | None:
        """The entry at an absolute path in the image, its folders' symbolic links resolved (its
        last part's is not, as the archive endpoint does)."""
        parts = [p for p in path.split("/") if p]
        entry, where, links = self._root(), "/", 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                # Start again from the root for the parent: simple, and links are already resolved.
                parts = [p for p in posixpath.dirname(where).split("/") if p] + parts
                entry, where = self._root(), "/"
                continue
            if not stat.S_ISDIR(entry[1].st_mode):
                return None
            child = self._child(entry[2], name)
            if child is None:
                return None
            if stat.S_ISLNK(child[1].st_mode) and parts:
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = os.readlink(child[0])
                base = "/" if target.startswith("/") else where
                parts = [p for p in posixpath.join(base, target).split("/") if p] + parts
                entry, where = self._root(), "/"
                continue
            entry, where = child, posixpath.join(where, name)
        return entry

    def read(self, path: str, max_bytes: int, follow: int = 2) -> bytes | None:
        """One file's bytes, its own symbolic link followed a couple of times (as image_files
        follows the link the archive endpoint returns)."""
        entry = self._lookup(path)
        if entry is None:
            return None
        layer_path, st, _ = entry
        if stat.S_ISLNK(st.st_mode) and follow:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), os.readlink(layer_path)))
            return self.read(target, max_bytes, follow - 1)
        if stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes:
            return layer_path.read_bytes()
        return None

    def files(self, root: str) -> Iterator[tuple[str, Path, int]]:
        """Every regular file under root, as (path in the image, path on this machine, size);
        root's own symbolic link is not followed, and none below it is."""
        entry = self._lookup(root)
        if entry is None or not stat.S_ISDIR(entry[1].st_mode):
            return
        pending = [(posixpath.normpath(root), entry[2])]
        while pending:
            folder, active = pending.pop()
            seen: set[str] = set()
            for layer_dir in active:
                with os.scandir(layer_dir) as listing:
                    names = sorted(e.name for e in listing)
                for name in names:
                    if name in seen:
                        continue
                    seen.add(name)
                    child = self._child(active, name)
                    if child is None:
                        continue
                    path = posixpath.join(folder, name)
                    if stat.S_ISDIR(child[1].st_mode):
                        pending.append((path, child[2]))
                    elif stat.S_ISREG(child[1].st_mode):
                        yield path, child[0], child[1].st_size
