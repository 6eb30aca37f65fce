"""A CycloneDX SBOM of one image, from what the image itself records (attest.image_files): its OS
packages (dpkg or apk database) and the language packages installed in it (npm's package.json
files and lockfile, Python's distribution metadata), each with its package URL.

The BOM is a function of the image alone: its serial number is derived from the image id and its
timestamp is the image's creation time, so the same image gives the same bytes."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import HeaderParser
from typing import Any

from nexus_assets.attest.image_files import ImageFiles

TOOL_NAME = "nexus-assets"
LOCATION_PROPERTY = "nexus-assets:location"
IMAGE_ID_PROPERTY = "nexus-assets:image-id"
_PEP503_RE = re.compile(r"[-_.]+")


@dataclass
class Package:
    """One installed package: its ecosystem (deb, apk, npm, pypi), name, version and where it is."""

    kind: str
    name: str
    version: str
    purl: str
    license: str | None = None
    locations: list[str] = field(default_factory=list)


def os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release (values unquoted)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            found[key] = value.strip().strip("\"'")
    return found


def _stanzas(text: str) -> list[dict[str, str]]:
    """The paragraphs of a deb822 file (dpkg's status): fields, continuation lines joined."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, None
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            last, _, value = line.partition(":")
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _purl(kind: str, name: str, version: str, namespace: str | None = None, **qualifiers: str) -> str:
    from packageurl import PackageURL

    return PackageURL(type=kind, namespace=namespace, name=name, version=version,
                      qualifiers={k: v for k, v in qualifiers.items() if v} or None).to_string()


def dpkg_packages(status: str, release: dict[str, str], location: str) -> list[Package]:
    """The packages dpkg holds installed ("install ok installed") in its status file."""
    distro_id = release.get("ID") or "debian"
    distro = f"{distro_id}-{release['VERSION_ID']}" if release.get("VERSION_ID") else ""
    found = []
    for stanza in _stanzas(status):
        name, version = stanza.get("Package"), stanza.get("Version")
        if not name or not version or not stanza.get("Status", "").endswith(" installed"):
            continue
        found.append(Package("deb", name, version, _purl("deb", name, version, distro_id, arch=stanza.get("Architecture", ""),
                                                         distro=distro), None, [location]))
    return found


def apk_packages(installed: str, release: dict[str, str], location: str) -> list[Package]:
    """The packages apk lists in its installed database (P:name, V:version, A:arch, L:license)."""
    distro_id = release.get("ID") or "alpine"
    distro = f"{distro_id}-{release['VERSION_ID']}" if release.get("VERSION_ID") else ""
    found = []
    for block in installed.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        if fields.get("P") and fields.get("V"):
            found.append(Package("apk", fields["P"], fields["V"],
                                 _purl("apk", fields["P"], fields["V"], distro_id, arch=fields.get("A", ""), distro=distro),
                                 fields.get("L"), [location]))
    return found


def _npm(name: str, version: str, license: object, location: str) -> Package:
    scope, _, bare = name.rpartition("/") if name.startswith("@") else ("", "", name)
    return Package("npm", name, version, _purl("npm", bare, version, scope or None),
                   license if isinstance(license, str) else None, [location])


def npm_package(data: bytes, location: str) -> Package | None:
    """The package a node_modules/<name>/package.json describes, or None when it names none."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return _npm(name, version, manifest.get("license"), location)


def npm_lock_packages(data: bytes, location: str) -> list[Package]:
    """The packages a package-lock.json (lockfile v2/v3 `packages`, v1 `dependencies`) resolved."""
    try:
        lock = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(lock, dict):
        return []
    found = []
    for path, entry in (lock.get("packages") or {}).items():
        if not path or not isinstance(entry, dict) or entry.get("link") or "node_modules/" not in path:
            continue
        name = entry.get("name") or path.rsplit("node_modules/", 1)[1]
        if isinstance(entry.get("version"), str):
            found.append(_npm(name, entry["version"], entry.get("license"), location))
    if not found:
        def walk(deps: dict[str, Any]) -> None:
            for name, entry in deps.items():
                if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    found.append(_npm(name, entry["version"], None, location))
                    walk(entry.get("dependencies") or {})
        walk(lock.get("dependencies") or {})
    return found


def python_package(data: bytes, location: str) -> Package | None:
    """The distribution a *.dist-info/METADATA (or *.egg-info/PKG-INFO) file describes."""
    headers = HeaderParser().parsestr(data.decode("utf-8", "replace"), headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    license = headers.get("License-Expression") or headers.get("License")
    if license and (len(license) > 80 or "\n" in license or license.upper() == "UNKNOWN"):
        license = None  # a whole license text pasted in: not a name
    normalized = _PEP503_RE.sub("-", name.strip()).lower()
    return Package("pypi", name.strip(), version.strip(), _purl("pypi", normalized, version.strip()), license,
                   [location])


def image_packages(files: ImageFiles) -> list[Package]:
    """Every package the image records, one entry per package URL (the places it was seen merged)."""
    release = os_release(files.os_release)
    found: list[Package] = []
    if files.dpkg_status:
        found += dpkg_packages(files.dpkg_status, release, "/var/lib/dpkg/status")
    if files.apk_installed:
        found += apk_packages(files.apk_installed, release, "/lib/apk/db/installed")
    for path, data in sorted(files.node_packages.items()):
        package = npm_package(data, path)
        if package:
            found.append(package)
    for path, data in sorted(files.lockfiles.items()):
        found += npm_lock_packages(data, path)
    for path, data in sorted(files.python_metadata.items()):
        package = python_package(data, path.rsplit("/", 1)[0])
        if package:
            found.append(package)
    merged: dict[str, Package] = {}
    for package in found:
        known = merged.get(package.purl)
        if known is None:
            merged[package.purl] = package
            continue
        known.locations += [loc for loc in package.locations if loc not in known.locations]
        known.license = known.license or package.license
    return sorted(merged.values(), key=lambda p: p.purl)


def make_bom_json(service: str, image_name: str, files: ImageFiles, packages: list[Package],
                  tool_version: str) -> str:
    """The CycloneDX 1.6 JSON document of one image (cyclonedx-python-lib's model and writer)."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    licenses = LicenseFactory()
    root = Component(type=ComponentType.CONTAINER, name=image_name, version=files.image_id,
                     bom_ref=f"image:{files.image_id}",
                     properties=[Property(name=IMAGE_ID_PROPERTY, value=files.image_id),
                                 Property(name="nexus-assets:service", value=service)])
    components = []
    for package in packages:
        components.append(Component(
            type=ComponentType.LIBRARY,
            name=package.name, version=package.version, purl=PackageURL.from_string(package.purl),
            bom_ref=package.purl,
            licenses=[licenses.make_from_string(package.license)] if package.license else None,
            properties=[Property(name=LOCATION_PROPERTY, value=loc) for loc in package.locations],
        ))
    created = _timestamp(files.created)
    tool = Component(type=ComponentType.APPLICATION, name=TOOL_NAME, version=tool_version)
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"nexus-assets:sbom:{files.image_id}"),
              metadata=BomMetaData(component=root, timestamp=created))
    bom.metadata.tools.components.add(tool)
    bom.components.update(components)
    # The same graph register_dependency makes (root -> every package, each package a leaf), built
    # at once: register_dependency looks each target up in a list, quadratic in the packages.
    bom.dependencies.update([Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components]),
                             *(Dependency(ref=c.bom_ref) for c in components)])
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def _timestamp(created: str) -> datetime | None:
    """The engine's creation time (nanoseconds, `Z`) as a datetime."""
    if not created:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", created.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
