"""The files an SBOM is made from, read out of an image as the image records them: the OS package
database (dpkg's status file or apk's installed database), /etc/os-release, and the language
packages installed in it (node_modules/*/package.json, package-lock.json, Python *.dist-info/
METADATA and *.egg-info/PKG-INFO).

They are read from the engine's overlay2 layer folders when this process sees them (a local
engine, run as root: attest.layer_files), else out of a container created from the image and never
started (no shell, no command runs in it), through the engine's archive endpoint, streamed.
Language packages are looked for under the places images install them: the image's WORKDIR,
/usr/local/lib (official python and node images), /usr/lib/node_modules (Alpine's npm), /opt, /app,
/srv, /usr/src, /home, /root, and the folders named by VIRTUAL_ENV, PYTHONPATH and NODE_PATH.
Packages a distribution installs (Debian's /usr/lib/python3/dist-packages, /usr/share/nodejs) are
OS packages: the dpkg database lists them."""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nexus_assets.attest.layer_files import LayeredImage
from nexus_assets.core.errors import EngineError

DPKG_STATUS = "/var/lib/dpkg/status"
APK_INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
LANGUAGE_ROOTS = ("/usr/local/lib", "/usr/lib/node_modules", "/opt", "/app", "/srv", "/usr/src", "/home", "/root")
MAX_FILE_BYTES = 4 << 20  # a package.json or METADATA larger than this is not one
_NODE_PACKAGE_RE = re.compile(r"/node_modules/((?:@[^/]+/)?[^/@.][^/]*)/package\.json$")
_LOCK_RE = re.compile(r"(?:^|/)(package-lock\.json|node_modules/\.package-lock\.json)$")
_PYTHON_META_RE = re.compile(r"/[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO)$")


@dataclass
class ImageFiles:
    """What an image records about what is installed in it (file path -> text or bytes)."""

    image_id: str
    created: str = ""
    architecture: str = ""
    os_release: str = ""
    dpkg_status: str | None = None
    apk_installed: str | None = None
    node_packages: dict[str, bytes] = field(default_factory=dict)
    lockfiles: dict[str, bytes] = field(default_factory=dict)
    python_metadata: dict[str, bytes] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)


def language_roots(config: dict[str, Any]) -> list[str]:
    """The folders of an image worth searching for language packages, outermost only."""
    candidates = list(LANGUAGE_ROOTS)
    workdir = (config.get("WorkingDir") or "").rstrip("/")
    if workdir:
        candidates.append(workdir)
    for entry in config.get("Env") or []:
        key, _, value = entry.partition("=")
        if key == "VIRTUAL_ENV" and value:
            candidates.append(value)
        elif key in ("PYTHONPATH", "NODE_PATH"):
            candidates += [p for p in value.split(":") if p.startswith("/")]
    roots: list[str] = []
    for path in sorted({posixpath.normpath(c) for c in candidates if c.startswith("/") and c != "/"}, key=len):
        if not any(path == r or path.startswith(r + "/") for r in roots):
            roots.append(path)
    return sorted(roots)


class _ChunkReader(io.RawIOBase):
    """A file over the engine's chunked archive stream, so tarfile reads it as it arrives."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _archive(api: Any, container_id: str, path: str) -> tarfile.TarFile | None:
    """The engine's tar stream of path in the container, or None when the image has no such path."""
    import docker.errors

    try:
        chunks, _ = api.get_archive(container_id, path, chunk_size=1 << 20)
    except docker.errors.NotFound:
        return None
    return tarfile.open(fileobj=io.BufferedReader(_ChunkReader(iter(chunks)), 1 << 20), mode="r|")


def _read_one(api: Any, container_id: str, path: str, follow: int = 2) -> bytes | None:
    """One file's bytes, following a symbolic link (os-release is one) a couple of times."""
    archive = _archive(api, container_id, path)
    if archive is None:
        return None
    with archive:
        for member in archive:
            if member.issym() and follow:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                return _read_one(api, container_id, target, follow - 1)
            if member.isfile() and member.size <= MAX_FILE_BYTES:
                handle = archive.extractfile(member)
                return handle.read() if handle else None
    return None


def _bucket(found: ImageFiles, path: str) -> dict[str, bytes] | None:
    """Where a language package file at path belongs in found, or None when it is no such file."""
    if _NODE_PACKAGE_RE.search(path):
        return found.node_packages
    if _LOCK_RE.search(path):
        return found.lockfiles
    if _PYTHON_META_RE.search(path):
        return found.python_metadata
    return None


class _ArchiveReader:
    """An image's files through the engine's archive endpoint, out of a container created from
    it and never started (no shell, no command runs in it); works with any engine and driver."""

    def __init__(self, api: Any, image_id: str) -> None:
        self.api = api
        # The command is never run, it only has to exist for the engine.
        self.container = api.create_container(image_id, command=["/nexus-sbom-never-runs"],
                                              name=f"nexus-sbom-{uuid.uuid4().hex[:12]}",
                                              labels={"io.nexus-assets.purpose": "sbom"})["Id"]

    def read(self, path: str) -> bytes | None:
        return _read_one(self.api, self.container, path)

    def scan(self, root: str, found: ImageFiles) -> None:
        """Every language package file under root, read from one streamed archive."""
        archive = _archive(self.api, self.container, root)
        if archive is None:
            return
        parent = posixpath.dirname(root)
        with archive:
            for member in archive:
                if not member.isfile() or member.size > MAX_FILE_BYTES:
                    continue
                path = posixpath.join(parent, member.name)
                bucket = _bucket(found, path)
                handle = archive.extractfile(member) if bucket is not None else None
                if bucket is not None and handle is not None:
                    bucket[path] = handle.read()

    def close(self) -> None:
        self.api.remove_container(self.container, force=True)


class _LayerReader:
    """An image's files read from the engine's overlay2 layer folders (attest.layer_files)."""

    def __init__(self, layered: LayeredImage) -> None:
        self.layered = layered

    def read(self, path: str) -> bytes | None:
        return self.layered.read(path, MAX_FILE_BYTES)

    def scan(self, root: str, found: ImageFiles) -> None:
        for path, local, size in self.layered.files(root):
            bucket = _bucket(found, path)
            if bucket is not None and size <= MAX_FILE_BYTES:
                bucket[path] = local.read_bytes()

    def close(self) -> None:
        pass


def _collect(reader: _ArchiveReader | _LayerReader, found: ImageFiles) -> ImageFiles:
    for path in OS_RELEASE:
        data = reader.read(path)
        if data:
            found.os_release = data.decode("utf-8", "replace")
            break
    status = reader.read(DPKG_STATUS)
    found.dpkg_status = status.decode("utf-8", "replace") if status is not None else None
    for path in APK_INSTALLED:
        data = reader.read(path)
        if data is not None:
            found.apk_installed = data.decode("utf-8", "replace")
            break
    for root in found.roots:
        reader.scan(root, found)
    return found


def read_image_files(client: Any, image_id: str, *, from_layers: bool = True) -> ImageFiles:
    """The package databases and language package files of one image in the engine: from its
    layer folders when this process can read them (and from_layers), else through the archive
    endpoint. Both give the same answer (tests/attest/test_layer_files.py)."""
    import docker.errors

    api = client.api
    try:
        info = api.inspect_image(image_id)
    except docker.errors.ImageNotFound:
        raise EngineError(f"image {image_id} is not in the engine: build it again") from None

    def empty() -> ImageFiles:
        return ImageFiles(image_id=info["Id"], created=info.get("Created") or "",
                          architecture=info.get("Architecture") or "", roots=language_roots(info.get("Config") or {}))

    layered = LayeredImage.of(info) if from_layers else None
    if layered is not None:
        try:
            return _collect(_LayerReader(layered), empty())
        except OSError:
            pass  # a layer went away or is unreadable (the image removed meanwhile): ask the engine
    reader = _ArchiveReader(api, info["Id"])
    try:
        return _collect(reader, empty())
    finally:
        reader.close()
