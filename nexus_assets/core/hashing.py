"""Content hashes: the staleness signal of every per-service asset.

A service's fingerprint covers what decides its image: the source tree (Dockerfile
included), the build args and the ids of the base images it starts from. Same
content, same hash, whatever the mtimes or the machine."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
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


def special_kind(path: Path) -> str | None:
    """'named pipe', 'socket', 'device' for a file that is none of file, folder or link
    (reading a named pipe blocks for ever); None otherwise."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def _add_file(digest: hashlib._Hash, path: Path, rel: str) -> None:
    """Relative path, executable bit and content (or link target) of one file into digest."""
    if path.is_symlink():
        digest.update(f"L {rel} -> {os.readlink(path)}\n".encode())
        return
    if special_kind(path) is not None:
        # A named pipe would block the read for ever; like any special file it is never copied
        # into the working copy (workspace.sync), so no build reads it: not part of the hash.
        return
    mode = "x" if os.access(path, os.X_OK) else "-"
    digest.update(f"F {rel} {mode}\n".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    digest.update(b"\n")


def tree_hash(root: Path) -> str:
    """sha256 over relative path, executable bit and content (or link target) of every file."""
    digest = hashlib.sha256()
    for path in iter_tree(root):
        _add_file(digest, path, path.relative_to(root).as_posix())
    return digest.hexdigest()


def workspace_version(repo: Path) -> str:
    """The data version of `workspace`: the repository's content hash, as the workspace step
    records it and the run planner (core/plan.py) compares it."""
    return tree_hash(repo)[:24]


def dockerignore_patterns(context: Path) -> list[str]:
    """The context's .dockerignore as the docker SDK reads it: stripped, no blanks or comments."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def context_hash(context: Path, dockerfile: Path | None = None) -> str:
    """sha256 over exactly what a build reads: the files of the context that its .dockerignore
    lets through (matched by the docker SDK that sends the context), which Dockerfile is used,
    and that Dockerfile's content when it lies outside the context. Tool caches are left out as
    everywhere (the working copy never holds them). The same for a folder and its mirror."""
    from docker.utils.build import exclude_paths

    rel_df = os.path.relpath(dockerfile, context) if dockerfile is not None else "Dockerfile"
    outside = rel_df == ".." or rel_df.startswith("../")
    kept = (exclude_paths(str(context), dockerignore_patterns(context), dockerfile=None if outside else rel_df)
            if context.is_dir() else set())
    digest = hashlib.sha256()
    digest.update(f"D {rel_df}\n".encode())
    for path in iter_tree(context):
        rel = path.relative_to(context).as_posix()
        if rel in kept:
            _add_file(digest, path, rel)
    if outside and dockerfile is not None and dockerfile.is_file():
        _add_file(digest, dockerfile, rel_df)
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


SUMS = "SHA256SUMS"
_SUMS_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<path>\S.*)$")


def sha256sums(digests: Mapping[str, str]) -> bytes:
    """The SHA256SUMS listing of {relative path: sha256}, in `sha256sum`'s format (`<hex>  <path>`,
    sorted by path), so `sha256sum --check SHA256SUMS` reads it: the package's and the evidence
    pack's alike."""
    return "".join(f"{digests[path]}  {path}\n" for path in sorted(digests)).encode("utf-8")


def parse_sha256sums(listing: bytes) -> dict[str, str]:
    """{relative path: sha256} of a SHA256SUMS listing, read as `sha256sum --check --strict` reads
    it (text or `*` binary mode marks; blank lines skipped). A ValueError names the first line
    that is no `<sha256>  <path>`, or a path listed twice."""
    listed: dict[str, str] = {}
    for number, line in enumerate(listing.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE.match(line)
        if match is None:
            raise ValueError(f"{SUMS} line {number} is not `<sha256>  <path>`")
        if match["path"] in listed:
            raise ValueError(f"{SUMS} line {number} lists {match['path']} a second time")
        listed[match["path"]] = match["digest"]
    return listed


def json_version(payload: object, *, drop: Iterable[str] = ("generated_at",)) -> str:
    """A data version for a JSON report: its hash without the volatile top-level keys."""
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k not in set(drop)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
