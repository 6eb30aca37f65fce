"""Content hashes: the staleness signal of every per-service asset.

A service's fingerprint covers what decides its image: the source tree (Dockerfile
included), the build args and the ids of the base images it starts from. Same
content, same hash, whatever the mtimes or the machine."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

# Never part of a service's source: tool caches and VCS state.
IGNORED_NAMES = frozenset({".git", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".venv"})
IGNORED_SUFFIXES = (".pyc", ".pyo")


def iter_tree(root: Path) -> Iterable[Path]:
    """Files and links under root, sorted, without ignored names. Links are not followed."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for name in sorted(filenames):
            if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
                continue
            yield Path(dirpath) / name
        # Symlinked folders appear in dirnames but os.walk does not descend: hash them as links.
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                yield Path(dirpath) / d


def tree_hash(root: Path) -> str:
    """sha256 over relative path, executable bit and content (or link target) of every file."""
    digest = hashlib.sha256()
    for path in iter_tree(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} -> {os.readlink(path)}\n".encode())
            continue
        mode = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"F {rel} {mode}\n".encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 16), b""):
                digest.update(chunk)
        digest.update(b"\n")
    return digest.hexdigest()


def fingerprint(tree: str, build_args: Mapping[str, str], base_image_ids: Mapping[str, str]) -> str:
    """The service fingerprint: one short hash of tree hash, build args and base image ids."""
    payload = json.dumps(
        {"tree": tree, "build_args": dict(sorted(build_args.items())), "bases": dict(sorted(base_image_ids.items()))},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_version(payload: object, *, drop: Iterable[str] = ("generated_at",)) -> str:
    """A data version for a JSON report: its hash without the volatile top-level keys."""
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k not in set(drop)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
